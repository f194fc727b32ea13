"""proj._compat: the one tomllib/tomli fallback."""
from __future__ import annotations

import pytest

from proj._compat import toml_loads


def test_toml_is_parsed_and_a_bad_document_is_a_value_error() -> None:
    assert toml_loads('[tool.proj]\nspec-sha256 = "ab"\n') == {"tool": {"proj": {"spec-sha256": "ab"}}}
    with pytest.raises(ValueError, match="line 1"):
        toml_loads("[unclosed\n")
