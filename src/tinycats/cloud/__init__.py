"""Cloud training: the Modal app (modal_app.py)."""
