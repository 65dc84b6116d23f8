"""Worked solutions of the coding exercises, one module per lesson (tested)."""
