"""Doctor: node checks (`checks`) and failure-log explanations (`explain`, `signatures`)."""
