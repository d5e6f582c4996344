"""The run folder's short clip: the first seconds of the found policy, ``video/episode.mp4``.

``esenas run`` (both runtimes) and ``esenas fetch`` add it after writing the folder, so the two
folders stay alike: the same top-level files, and ``summary.json`` gains the same ``video``
entry, which says what was rendered or, when nothing was, why (a note, never an error: a
machine without offscreen OpenGL still trains). The clip lives in a subfolder because it is the
one optional output: the documents and pictures beside it are there on every machine.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any, Final

from esenas.envload import one_line

from esenas_cli.eval_cmd import load_policy
from esenas_cli.results_dir import POLICY_FILE, add_to_summary

CLIP_FILE: Final = "video/episode.mp4"
#: A few seconds of the task at its own frame rate, drawn without shadows and reflections: with
#: Mesa's software rasteriser HalfCheetah's 60 frames take about a second of one CPU core.
CLIP_SECONDS: Final = 3.0
CLIP_SIZE: Final = (320, 240)
CLIP_SEED: Final = 0


def add_clip(out: Path, *, enabled: bool = True, why_not: str = "") -> dict[str, Any]:
    """Render the clip into ``out`` (when ``enabled``), record it in summary.json and print one line.

    ``why_not`` is the note when the caller already knows it will not render (``--no-video``,
    an interrupted run). Returns the summary's ``video`` entry.
    """
    entry = _render(out) if enabled else _note(why_not or "turned off")
    add_to_summary(out, "video", entry)
    if entry["file"]:
        from esenas_cli.video import drawn_with

        print(f"video: {out / CLIP_FILE} ({entry['seconds']:.1f} s, {entry['frames']} frames, "
              f"rendered in {entry['renderSeconds']:.1f} s with {drawn_with(entry['renderer'])})")
    else:
        print(f"video: none ({entry['note']})")
    return entry


def _note(why: str) -> dict[str, Any]:
    return {"file": None, "note": f"not rendered: {why}"}


def _render(out: Path) -> dict[str, Any]:
    from esenas_cli import video

    loaded = load_policy(out / POLICY_FILE)
    if isinstance(loaded, str):
        return _note(loaded)
    policy, env_spec = loaded
    start = time.monotonic()
    try:
        r = video.render(policy, env_spec, out / CLIP_FILE, episodes=1, seed=CLIP_SEED,
                         max_seconds=CLIP_SECONDS, size=CLIP_SIZE, quality="fast")
    except video.RenderUnavailable as exc:
        return _note(f"{exc}; esenas eval {out} --video FILE renders it on a machine that can")
    # Ctrl-C while the clip renders skips only the clip: the results are already written.
    except KeyboardInterrupt:
        (out / CLIP_FILE).unlink(missing_ok=True)
        return _note(f"interrupted (Ctrl-C); esenas eval {out} --video FILE renders it")
    # The end of a finished run: a renderer or encoder failing in an unforeseen way must not turn
    # a trained result into an error; the folder is already complete without the clip.
    except Exception as exc:
        print(f"warning: the clip failed: {type(exc).__name__}: {one_line(exc)}", file=sys.stderr)
        return _note(f"rendering failed: {type(exc).__name__}: {one_line(exc)}")
    return {"file": CLIP_FILE, "frames": r.frames, "fps": r.fps, "seconds": round(r.seconds, 3),
            "episodeSeed": CLIP_SEED, "episodeSteps": r.steps[0], "renderer": r.backend,
            "renderSeconds": round(time.monotonic() - start, 2)}

