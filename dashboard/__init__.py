"""The Dash control room."""
