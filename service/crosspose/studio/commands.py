"""``crosspose demo``."""


def demo_command() -> None:
    """Run the main job with no hardware."""
    raise SystemExit("not built yet")
