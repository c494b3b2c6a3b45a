"""``crosspose keys …``: CURVE key pairs for authenticated grabber → fusion-host links."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(help="CURVE keys for authenticated remote grabbers.", no_args_is_help=True)


@app.command("generate")
def generate(
    out: Annotated[Path, typer.Option(help="Folder to write NAME.key and NAME.key_secret into.")],
    name: Annotated[
        str, typer.Option(help="Key name: 'server' on the fusion host, the camera name on a grabber.")
    ],
) -> None:
    """Write a key pair. Copy a grabber's NAME.key into the server's allowed-clients folder.

    Example: crosspose keys generate --out keys --name cam1
    """
    from crosspose.bus import generate_keypair

    public, secret = generate_keypair(out, name)
    typer.echo(f"public key: {public}")
    typer.echo(f"secret key: {secret} (keep it on this host only)")
