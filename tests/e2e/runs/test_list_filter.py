"""`proj runs list --filter/--order-by/--columns/--page-token` over real runs made by the real CLI."""
from __future__ import annotations

import pytest

TRAIN = {
    "MLproject": ("entry_points:\n  main:\n    parameters: {alpha: float, tag: {type: string, default: x}}\n"
                  "    command: python train.py {alpha} {tag}\n"),
    "train.py": """\
        import sys
        import proj_client
        alpha = float(sys.argv[1])
        if alpha != 0.3:  # one run never logs loss: it sorts last and matches no loss filter
            proj_client.log_metric("loss", 5.0, step=0)  # an early point: only the latest (highest step) counts
            proj_client.log_metric("loss", alpha, step=3)
        proj_client.log_metric("acc", 1 - alpha, step=0)
        """,
}
ALPHAS = ("0.1", "0.2", "0.3", "0.4", "0.5", "0.6")


def one_error_line(out) -> str:
    assert out.code == 2, out
    assert "Traceback" not in out.stderr, out
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("proj: error: "), out
    return lines[0]


def test_filter_order_columns_pages_json(proj, make_project) -> None:
    root = make_project(TRAIN)
    for alpha in ALPHAS:
        out = proj("run", str(root), "--env-manager", "local", "-P", f"alpha={alpha}",
                   "-P", f"tag={'odd' if ALPHAS.index(alpha) % 2 else 'Even'}")
        assert out.code == 0, out

    def alphas(*args: str) -> list[str]:
        out = proj("runs", "list", "--json", *args)
        assert out.code == 0, out
        return [row["columns"]["alpha"] for row in out.json()]

    assert alphas("--filter", "metrics.loss < 0.45 and params.alpha != '0.2'", "--order-by", "metrics.loss ASC",
                  "--columns", "alpha,loss") == ["0.1", "0.4"]
    # loss of the 0.3 run is missing: last in both directions; the step-0 point 5.0 is never "the" value
    assert alphas("--order-by", "metrics.loss DESC", "--columns", "alpha") == ["0.6", "0.5", "0.4", "0.2", "0.1",
                                                                              "0.3"]
    assert alphas("--order-by", "metrics.`loss`", "--columns", "alpha") == ["0.1", "0.2", "0.4", "0.5", "0.6",
                                                                          "0.3"]
    assert alphas("--filter", "metrics.loss > 1", "--columns", "alpha") == []
    assert alphas("--filter", "params.tag LIKE 'e%'", "--columns", "alpha") == []  # LIKE is case-sensitive
    assert sorted(alphas("--filter", "params.tag ILIKE 'e%' AND attributes.status = 'FINISHED'",
                         "--columns", "alpha")) == ["0.1", "0.3", "0.5"]
    assert alphas("--filter", "params.alpha = \"0.5\" and metrics.acc > 0.49", "--columns", "alpha") == ["0.5"]

    # the table: params and metrics as columns, the latest metric value
    out = proj("runs", "list", "--filter", "params.alpha = '0.4'", "--columns", "alpha,loss,acc")
    assert out.code == 0, out
    header, row = out.stdout.splitlines()
    assert header.split()[-4:] == ["ALPHA", "LOSS", "ACC", "NAME"], out
    assert "0.4" in row.split() and "0.6" in row.split()

    # pages: two runs a page, the token printed on stderr, every run exactly once
    seen: list[str] = []
    token: str | None = None
    for _ in range(4):
        args = ["runs", "list", "--json", "-n", "2", "--order-by", "params.alpha", "--columns", "alpha"]
        out = proj(*args, *(["--page-token", token] if token else []))
        assert out.code == 0, out
        seen += [row["columns"]["alpha"] for row in out.json()]
        token = out.stderr.split("--page-token ")[1].split()[0] if "--page-token" in out.stderr else None
        if token is None:
            break
    assert seen == list(ALPHAS)


@pytest.mark.parametrize(("filter_args", "named"), [
    (("--filter", "metrics.loss < 0.5 or params.alpha = '0.1'"), "'or'"),
    (("--filter", "metrics.loss LIKE '0.5'"), "numeric"),
    (("--filter", "metrics.loss ILIKE 1"), "'ILIKE'"),
    (("--filter", "params.alpha = 0.1"), "quoted string"),
    (("--filter", "foo.alpha = '1'"), "'foo'"),
    (("--filter", "attributes.colour = 'red'"), "'colour'"),
    (("--filter", "status IN ('FAILED')"), "run_id"),
    (("--filter", "metrics.loss <"), "Found the end"),
    (("--order-by", "metrics.loss UP"), "'UP'"),
    (("--order-by", "metrics.loss", "--order-by", "metric.loss DESC"), "duplicate"),
    (("--page-token", "not-a-token"), "page token"),
])
def test_bad_search_is_one_line_exit_2(proj, filter_args: tuple[str, ...], named: str) -> None:
    line = one_error_line(proj("runs", "list", *filter_args))
    assert named in line, line
