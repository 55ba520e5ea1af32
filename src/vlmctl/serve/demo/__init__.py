"""The embedded default: a tiny Qwen2.5-VL with random weights served on CPU (OpenAI-compatible)."""

DEMO_NOTICE = (
    "DEMO MODEL: a tiny Qwen2.5-VL with RANDOM weights built locally by vlmctl; its answers are "
    "meaningless text. It shows the serving path end to end (images, video, streaming, multi-turn) "
    "without a GPU or a download. Serve a real checkpoint with `vlmctl serve --model PATH`."
)
DEMO_MODEL_NAME = "vlmctl-demo-qwen2.5-vl-tiny"
