"""The dashboard in English and German (LANGUAGE=en|de): the catalog covers every label, no page forgets t(),
the Capture page and the login form show the chosen language, and the user's own TITLE wins."""

from __future__ import annotations

import ast
import re
import string
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests.conftest import ROOT
from utils.config import Settings
from utils.i18n import error_text, language, t, user_text
from utils.i18n_de import GERMAN
from utils.navigation import PAGES

APP = str(ROOT / "app.py")
SCANNED = sorted((ROOT / "pages").glob("*.py")) + [ROOT / "utils" / "ui.py", ROOT / "utils" / "stats_plots.py"]

# Streamlit calls whose label / text arguments the operator reads
LABEL_CALLS = {
    "button", "title", "header", "subheader", "metric", "text_input", "number_input", "text_area", "selectbox",
    "multiselect", "radio", "select_slider", "slider", "toggle", "checkbox", "caption", "info", "warning", "error",
    "success", "toast", "expander", "form_submit_button", "link_button", "download_button", "file_uploader",
    "date_input", "time_input", "spinner", "tabs", "Page", "popover", "color_picker", "page_link", "status",
    "write", "markdown", "progress", "download_link", "data_editor", "Column", "TextColumn", "NumberColumn",
    "ImageColumn", "CheckboxColumn", "LinkColumn", "DatetimeColumn", "ProgressColumn", "update_layout",
    "update_xaxes", "update_yaxes",
}
LABEL_KEYWORDS = {"label", "help", "placeholder", "caption", "title", "body", "text", "xaxis_title",
                  "yaxis_title", "title_text"}
# literals that are not words of a language (units, symbols, numbers, markdown around a value)
NOT_WORDS = {"#", "–", "·", "x", "px", "KiB", "MB", "GB", "%", "d", "s", "ms", "JPEG", "PNG", "MD5"}


def python_files() -> list[Path]:
    """The repository's Python files (not the virtual environment or tests)."""
    skip = {".venv", "tests", "bench", "node_modules", ".git"}
    return [p for p in ROOT.rglob("*.py") if not skip & set(p.relative_to(ROOT).parts)]


def t_calls(path: Path) -> list[tuple[int, ast.expr]]:
    """(line, first argument) of every ``t(...)`` call in ``path``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [(n.lineno, n.args[0]) for n in ast.walk(tree)
            if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == "t" and n.args]


def placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}


def catalog_sources() -> dict[str, list[str]]:
    """English text -> where it is used: every literal of a ``t(...)`` call, the page titles, the defaults of the
    user's own texts."""
    found: dict[str, list[str]] = {}
    for path in python_files():
        for line, arg in t_calls(path):
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                found.setdefault(arg.value, []).append(f"{path.relative_to(ROOT)}:{line}")
    for page in PAGES:
        found.setdefault(page.title, []).append("utils/navigation.py (page title)")
    for name in ("TITLE", "INPUT_TEXT_TITLE", "INPUT_TEXT_PLACEHOLDER"):
        found.setdefault(Settings.model_fields[name].default, []).append(f"Settings.{name} default")
    return found


def words(text: str) -> bool:
    """Whether a literal holds words the operator reads (not only symbols, numbers, markup or units)."""
    stripped = text.strip(" *`:·()[]#\\|/-–—_,.;=+0123456789\n")
    return (stripped not in NOT_WORDS and any(c.isalpha() for c in stripped) and not stripped.startswith(":material/")
            and not re.fullmatch(r"[A-Z][A-Z0-9_]*|https?://\S*", stripped))  # a setting's name, an example URL


def bare_literals(node: ast.expr) -> list[str]:
    """The user-facing literal texts in an argument that did not go through t() (t(...) calls are fine)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value] if words(node.value) else []
    if isinstance(node, ast.JoinedStr):
        return [v.value for v in node.values if isinstance(v, ast.Constant) and words(v.value)]
    if isinstance(node, ast.BinOp):
        return bare_literals(node.left) + bare_literals(node.right)
    if isinstance(node, ast.IfExp):
        return bare_literals(node.body) + bare_literals(node.orelse)
    if isinstance(node, (ast.List, ast.Tuple)) :
        return [s for elt in node.elts for s in bare_literals(elt)]
    return []  # names, attributes, calls (t(...), md(...)): not a literal written here


def untranslated_labels(path: Path) -> list[tuple[int, str]]:
    """(line, text) of each literal label passed to a Streamlit widget without t()."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for n in ast.walk(tree):
        name = n.func.attr if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) else \
            n.func.id if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) else None
        if name not in LABEL_CALLS or isinstance(n.func, ast.Attribute) and isinstance(n.func.value, ast.Name) \
                and n.func.value.id in {"logger", "logging", "log"}:  # log messages stay English
            continue
        args = list(n.args[:1]) + [k.value for k in n.keywords if k.arg in LABEL_KEYWORDS]
        if name == "tabs" and n.args:
            args = [n.args[0]]
        for arg in args:
            found += [(n.lineno, text) for text in bare_literals(arg)]
    return found


# ---------------------------------------------------------------- the catalog


def test_every_translated_text_has_a_german_entry_with_the_same_placeholders():
    sources = catalog_sources()
    missing = [f"{where[0]}: {text!r}" for text, where in sources.items() if text not in GERMAN]
    assert not missing, "no German text in utils/i18n_de.py for:\n" + "\n".join(missing)
    wrong = [f"{text!r}: {sorted(placeholders(text))} != {sorted(placeholders(GERMAN[text]))}"
             for text in sources if placeholders(text) != placeholders(GERMAN[text])]
    assert not wrong, "German text with other placeholders:\n" + "\n".join(wrong)
    assert len(sources) > 150  # the scan sees the pages, not an empty list


def test_t_is_called_with_literals_so_that_the_scan_sees_every_text():
    """An f-string inside t() would never match the catalog: the values go in as t("... {x}", x=...)."""
    dynamic = [f"{path.relative_to(ROOT)}:{line}" for path in python_files() for line, arg in t_calls(path)
               if isinstance(arg, ast.JoinedStr)]
    assert not dynamic, "t(f'...') found; write t('... {name}', name=value):\n" + "\n".join(dynamic)


def test_no_page_passes_an_untranslated_label_to_a_widget():
    found = [f"{path.relative_to(ROOT)}:{line}: {text!r}" for path in SCANNED
             for line, text in untranslated_labels(path)]
    assert not found, "labels without t() (wrap them, add the German text to utils/i18n_de.py):\n" + "\n".join(found)


def test_the_scan_finds_a_forgotten_label(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text('import streamlit as st\nst.button("Start now")\nst.metric(t("Images"), 3, help=f"{n} kept")\n'
                     'st.caption("·")\nst.button(t("Cancel"))\ncol.warning("Disk full" if x else t("Fine"))\n'
                     'st.caption(f"`{path}`")\n')
    assert sorted(untranslated_labels(probe)) == [(2, "Start now"), (3, " kept"), (6, "Disk full")]


def test_t_falls_back_to_english_and_fills_placeholders(monkeypatch):
    monkeypatch.setenv("LANGUAGE", "de")
    assert language() == "de"
    assert t("Close order") == GERMAN["Close order"] != "Close order"
    assert t("A label nobody translated yet {n}", n=3) == "A label nobody translated yet 3"
    assert t("{n} image(s) saved.", n=4) == GERMAN["{n} image(s) saved."].format(n=4)
    monkeypatch.setenv("LANGUAGE", "en")
    assert t("Close order") == "Close order" and t("{n} image(s) saved.", n=4) == "4 image(s) saved."
    monkeypatch.setenv("PREFIX", "LINE2")
    monkeypatch.setenv("LINE2_LANGUAGE", "DE")
    assert language() == "de"


def test_operator_messages_from_the_backend_are_translated(monkeypatch):
    from utils.storage import OrderNumberError, validate_order_number

    monkeypatch.setenv("LANGUAGE", "de")
    messages = []
    for bad in ("", "../etc", "x" * 70):
        with pytest.raises(OrderNumberError) as err:
            validate_order_number(bad, 64)
        messages.append(error_text(err.value))
    assert messages[0] == GERMAN["Please enter an order number."]
    assert "/" in messages[1] and "Order number" not in messages[1] and "Use letters" not in messages[1]
    assert "70" in messages[2] and "64" in messages[2] and "too long" not in messages[2]
    timeout = ("camera adapter http://127.0.0.1:5050: no answer within CAMERA_TIMEOUT=5 s; check that the camera "
               "adapter is reachable and not overloaded, or raise CAMERA_TIMEOUT (failed again after reconnecting "
               "and retrying once)")
    german = error_text(timeout)
    assert "http://127.0.0.1:5050" in german and "CAMERA_TIMEOUT=5" in german and "no answer" not in german
    assert "retrying" not in german
    assert error_text("Something nobody translated.") == "Something nobody translated."
    monkeypatch.setenv("LANGUAGE", "en")
    assert error_text(timeout) == timeout


def test_the_users_own_texts_win_and_their_defaults_are_translated(monkeypatch):
    from utils.config import load_settings

    monkeypatch.setenv("LANGUAGE", "de")
    default = load_settings({"EXPORT_DIR": "/tmp/x"})
    assert user_text(default, "INPUT_TEXT_TITLE") == GERMAN["Order number"]
    given = load_settings({"EXPORT_DIR": "/tmp/x", "INPUT_TEXT_TITLE": "Order number"})
    assert user_text(given, "INPUT_TEXT_TITLE") == "Order number"  # set explicitly, even to the English default


# ---------------------------------------------------------------- the pages in both languages


def labels(at: AppTest) -> set[str]:
    return {b.label for b in at.button} | {i.label for i in at.text_input} | {e.label for e in at.expander}


@pytest.mark.parametrize("lang", ["en", "de"])
def test_capture_page_in_the_chosen_language(app_env, monkeypatch, lang):
    monkeypatch.setenv("LANGUAGE", lang)
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert not at.exception
    tr = (lambda s: GERMAN[s]) if lang == "de" else (lambda s: s)
    assert {tr("Start"), tr("Close order"), tr("Order number"), tr("Options")} <= labels(at)
    assert at.title[0].value == tr("Extract unique images")
    assert at.text_input(key="order_number").placeholder == tr("Please enter an order number here")
    assert at.radio(key="save_as").options == [tr("distinct images"), tr("video")]
    assert at.radio(key="save_as").value == "distinct images"  # the value stays the engine's
    assert tr("Camera") in [h.value for h in at.sidebar.subheader]
    other = GERMAN["Close order"] if lang == "en" else "Close order"
    assert other not in labels(at)
    at.button(key="button_start").click().run()  # no order number: the backend's message, translated
    assert [w.value for w in at.warning] == [tr("Please enter an order number.")]


@pytest.mark.parametrize("lang", ["en", "de"])
def test_title_set_explicitly_wins_in_both_languages(app_env, monkeypatch, lang):
    monkeypatch.setenv("LANGUAGE", lang)
    monkeypatch.setenv("TITLE", "Packing line 3")
    monkeypatch.setenv("INPUT_TEXT_TITLE", "Lieferschein")
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert not at.exception
    assert at.title[0].value == "Packing line 3"
    assert at.text_input(key="order_number").label == "Lieferschein"
    assert at.button(key="button_close").label == (GERMAN["Close order"] if lang == "de" else "Close order")


@pytest.mark.parametrize("lang", ["en", "de"])
def test_login_form_in_the_chosen_language(app_env, monkeypatch, lang):
    from utils.auth import hash_password

    monkeypatch.setenv("LANGUAGE", lang)
    monkeypatch.setenv("AUTH_USERS", '{"anna": {"hash": "%s", "role": "admin"}}' % hash_password("s3cret-pass"))
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert not at.exception
    tr = (lambda s: GERMAN[s]) if lang == "de" else (lambda s: s)
    assert {i.label for i in at.text_input} == {tr("User name"), tr("Password")}
    assert [b.label for b in at.button] == [tr("Log in")]
    at.text_input(key="login_user").input("anna")
    at.text_input(key="login_password").input("wrong-password")
    at.button[0].click().run()
    assert [e.value for e in at.error] == [tr("Wrong user name or password.")]
