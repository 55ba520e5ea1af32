"""vlmctl: plan, launch and use Qwen2.5-VL on Ray + vLLM."""
__version__ = "0.1.0"
