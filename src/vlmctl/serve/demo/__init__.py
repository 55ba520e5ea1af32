"""The embedded default: a tiny Qwen-VL with random weights served on CPU (OpenAI-compatible).

The demo is Qwen2.5-VL unless ``--demo-family`` picks another family from :data:`DEMO_FAMILIES`.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DemoFamily:
    """One family the demo can build: its ``model_type`` key, display name and served model name."""

    key: str
    title: str
    model_name: str

    @property
    def notice(self) -> str:
        """What the API, the page and the model card say about this demo model."""
        return (
            f"DEMO MODEL: a tiny {self.title} with RANDOM weights built locally by vlmctl; its answers are "
            "meaningless text. It shows the serving path end to end (images, video, streaming, multi-turn) "
            "without a GPU or a download. Serve a real checkpoint with `vlmctl serve --model PATH`."
        )


DEMO_FAMILIES: dict[str, DemoFamily] = {
    f.key: f
    for f in (
        DemoFamily("qwen2_5_vl", "Qwen2.5-VL", "vlmctl-demo-qwen2.5-vl-tiny"),
        DemoFamily("qwen3_vl", "Qwen3-VL", "vlmctl-demo-qwen3-vl-tiny"),
    )
}
"""Families the demo can build, by ``model_type``."""
DEFAULT_DEMO_FAMILY = "qwen2_5_vl"
DEMO_NOTICE = DEMO_FAMILIES[DEFAULT_DEMO_FAMILY].notice
DEMO_MODEL_NAME = DEMO_FAMILIES[DEFAULT_DEMO_FAMILY].model_name


def demo_family(key: str) -> DemoFamily:
    """The demo family ``key`` (a ConfigError with "did you mean" for an unknown one)."""
    if key in DEMO_FAMILIES:
        return DEMO_FAMILIES[key]
    import difflib

    from vlmctl.errors import ConfigError

    close = difflib.get_close_matches(key.lower().replace("-", "_").replace(".", "_"), DEMO_FAMILIES, n=1,
                                      cutoff=0.5)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    raise ConfigError(
        f"--demo-family '{key}' is not a demo family (known: {', '.join(DEMO_FAMILIES)}){hint}",
        fix=f"vlmctl serve --demo-family {close[0] if close else DEFAULT_DEMO_FAMILY}",
    )
