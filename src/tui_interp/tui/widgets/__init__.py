"""Widgets of the TUI: each renders what the screen hands it and posts messages up."""
