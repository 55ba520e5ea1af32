"""What vlmctl knows about the inference engines it launches, one profile per engine version."""
