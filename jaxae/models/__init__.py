"""Encoder/decoder models: each a frozen config whose methods are pure functions of params."""
