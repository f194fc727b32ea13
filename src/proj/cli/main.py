"""The ``proj`` entry point: the command group, the app object, and the one place errors are caught."""
from __future__ import annotations

import sys
from dataclasses import dataclass, field

import click

from proj import __version__, settings
from proj.cli.lazy import LazyGroup
from proj.report import StderrReporter

COMMANDS = {
    "run": "proj.cli.run:run",
    "runs": "proj.cli.runs:runs",
    "db": "proj.cli.db:db",
    "validate": "proj.cli.validate:validate",
    "env": "proj.cli.env:env",
    "models": "proj.cli.models:models",
    "reproduce": "proj.cli.reproduce:reproduce",
    "cache": "proj.cli.cache:cache",
    "server": "proj.cli.server:server",
    "ui": "proj.cli.ui:ui",
}


@dataclass
class App:
    """Carried to every command with ``@click.pass_obj``: the reporter goes down to the core."""

    debug: bool = False
    reporter: StderrReporter = field(default_factory=StderrReporter)  # quiet from -q; warnings still show

    @property
    def quiet(self) -> bool:
        return self.reporter.quiet

    def info(self, message: str) -> None:
        self.reporter.info(message)

    def note(self, message: str) -> None:
        self.reporter.note(message)

    def warn(self, message: str) -> None:
        self.reporter.warn(message)


@click.group(cls=LazyGroup, lazy_commands=COMMANDS, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="proj")
@click.option("--debug", is_flag=True, envvar="PROJ_DEBUG", help="Show full tracebacks for errors.")
@click.option("-q", "--quiet", is_flag=True, help="Only the entry point's own output.")
@click.pass_context
def cli(ctx: click.Context, debug: bool, quiet: bool) -> None:
    """Run MLflow-style projects in locked, cached environments, and record every run."""
    ctx.obj = App(debug=debug, reporter=StderrReporter(quiet=quiet))


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; user errors become one line on stderr and an exit code, never a traceback."""
    from proj.errors import ProjError

    debug = "--debug" in (argv if argv is not None else sys.argv[1:]) or settings.debug()
    try:
        result = cli.main(args=argv, prog_name="proj", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("proj: aborted", err=True)
        return 130
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except ProjError as exc:
        if debug:
            raise
        click.echo(f"proj: error: {exc}", err=True)
        return exc.exit_code
    except KeyboardInterrupt:
        click.echo("proj: interrupted", err=True)
        return 130
    return result if isinstance(result, int) else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
