"""Generated protobuf and gRPC code; see core/proto/ and scripts/gen-protos.sh."""
