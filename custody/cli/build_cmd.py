"""custody build [--check]"""

from __future__ import annotations

from pathlib import Path

import click

from custody.cli._app import AppContext, json_option, pass_app
from custody.contracts import build as pipeline


@click.command("build")
@click.option("--check", is_flag=True, help="Rebuild in memory and fail if any committed artifact differs by a byte.")
@click.option(
    "--artifacts-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Artifacts folder [custody/contracts/artifacts].",
)
@json_option
@pass_app
def build_cmd(app: AppContext, check: bool, artifacts_dir: Path | None) -> None:
    """Compile contracts/ with the pinned solc (solc-js) into committed artifacts."""
    app.note(f"compiling with solc {pipeline.SOLC_VERSION} (solc-js) ...")
    if check:
        result = pipeline.check(artifacts_dir)
        data = {"ok": True, "artifacts": sorted(result.files), "compiler": result.compiler_version}
        app.emit(
            data,
            lambda c: c.print(
                f"ok: {len(result.files)} artifacts rebuild byte-identically ({result.compiler_version})"
            ),
        )
        return
    result = pipeline.compile_all()
    changed = pipeline.write(result, artifacts_dir)
    data = {"artifacts": sorted(result.files), "changed": changed, "compiler": result.compiler_version}
    app.emit(
        data, lambda c: c.print(f"{len(result.files)} artifacts, {len(changed)} changed: {', '.join(changed) or '-'}")
    )
