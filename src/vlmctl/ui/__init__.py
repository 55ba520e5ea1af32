"""The multimodal chat page: ``build_app`` (Gradio) over ``client`` (OpenAI-compatible HTTP)."""
