"""The README and docs/ say only what is true of the repository.

* every ``custody …`` command line they show (in code blocks, inline code and the CLI table) names commands
  and options that exist in the click tree of ``custody.cli``, and code blocks are valid shell;
* the README's tour is a subsequence of docs/quickstart.md's shell blocks, which tests/test_quickstart.py runs
  literally; the README's test command is what ``.ci/run`` runs;
* the options shown for ``benchmarks/*.py``, ``python -m benchmarks.…`` and ``scripts/*`` exist there;
* every relative link and repository path resolves, and every test a document names exists;
* the README's trust model quotes docs/security.md's promise verbatim.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import click
import pytest

from tests.conftest import REPO

README = REPO / "README.md"
DOCS = sorted((REPO / "docs").glob("*.md"))
DOCUMENTS = [README, REPO / "CHANGELOG.md", *DOCS]
#: pages other branches add; a link to one of them may dangle until that branch is merged (then it is
#: checked like any other page; remove the name from here once it exists)
PENDING_PAGES = {"docs/api.md"}

FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", re.MULTILINE | re.DOTALL)
INLINE = re.compile(r"(?<!`)`([^`\n]+)`(?!`)")
SHELL_LANGUAGES = {"", "bash", "sh", "shell", "console"}
GLOBAL_HELP = {"--help", "-h"}


def _documents() -> list[Path]:
    return [path for path in DOCUMENTS if path.is_file()]


def _relative(path: Path) -> str:
    return path.relative_to(REPO).as_posix()


# --- the click tree -------------------------------------------------------------------------------


def _root() -> click.Group:
    from custody.cli import cli

    return cli


def _options(command: click.Command) -> dict[str, click.Parameter]:
    found = {}
    for param in command.params:
        if isinstance(param, click.Option):
            for opt in (*param.opts, *param.secondary_opts):
                found[opt] = param
    return found


def _takes_value(param: click.Parameter) -> bool:
    return isinstance(param, click.Option) and not param.is_flag and not param.count


def check_command(words: list[str]) -> list[str]:
    """Problems with one ``custody …`` command given as words (the ``custody`` word first)."""
    root = _root()
    problems: list[str] = []
    words = [w for w in words[1:] if w not in {"…", "...", "|", "\\|"}]
    root_options = _options(root)
    i = 0
    while i < len(words) and words[i].startswith("-"):  # global options
        word = words[i].split("=", 1)[0]
        if re.fullmatch(r"-v+", word):
            i += 1
            continue
        if word not in root_options and word not in GLOBAL_HELP:
            return [f"unknown global option {word}"]
        takes = word in root_options and _takes_value(root_options[word]) and "=" not in words[i]
        i += 2 if takes else 1
    command: click.Command = root
    ctx = click.Context(root)
    path = ["custody"]
    while isinstance(command, click.Group) and i < len(words) and not words[i].startswith("-"):
        alternatives = words[i].split("|")
        subs = []
        for name in alternatives:
            sub = command.get_command(ctx, name)
            if sub is None:
                problems.append(f"{' '.join(path)} has no command {name!r}")
            else:
                subs.append(sub)
        if problems:
            return problems
        if len(subs) > 1:  # `custody collateral deploy|register|list|issue`: check the rest against each
            for sub in subs:
                problems += check_command(["custody", *path[1:], sub.name or "", *words[i + 1 :]])
            return problems
        command = subs[0]
        ctx = click.Context(command, parent=ctx)
        path.append(alternatives[0])
        i += 1
    known = _options(command)
    for word in words[i:]:
        if word.startswith("-") and not re.fullmatch(r"-+\d[\d.]*", word):  # negative numbers are values
            name = word.split("=", 1)[0]
            if name not in known and name not in GLOBAL_HELP:
                problems.append(f"{' '.join(path)} has no option {name}")
    return problems


# --- command lines in the documents -----------------------------------------------------------------


def _synopsis_words(text: str) -> list[str]:
    """Words of a synopsis (``[--opt X]`` brackets and table escapes dropped)."""
    return text.replace("\\|", " | ").replace("[", " ").replace("]", " ").split()


def _is_custody(word: str) -> bool:
    return word == "custody" or word.endswith("/custody")


def _shell_commands(block: str) -> list[tuple[int, list[str]]]:
    """(line offset, words) of every custody command in a shell block; shlex fails on invalid shell."""
    found = []
    heredoc = None
    for offset, line in enumerate(block.replace("\\\n", " ").splitlines()):
        if heredoc is not None:  # a here-document's body is data, not commands
            heredoc = None if line == heredoc else heredoc
            continue
        start = re.search(r"<<-?\s*['\"]?(\w+)['\"]?", line)
        heredoc = start.group(1) if start else None
        lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
        lexer.commenters = "#"
        lexer.whitespace_split = True
        tokens = list(lexer)
        segment: list[str] = []
        for token in [*tokens, ";"]:
            if token and set(token) <= set("();<>|&"):
                words = [w for w in segment if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", w)]
                if words[:3] == [".venv/bin/python", "-m", "custody"]:
                    words = ["custody", *words[3:]]
                if words and _is_custody(words[0]):
                    found.append((offset, ["custody", *(w for w in _synopsis_words(" ".join(words[1:])))]))
                segment = []
            else:
                segment.append(token)
    return found


def _expand_alternatives(text: str) -> list[str]:
    """``custody vault pause / unpause / rotate-owner VAULT`` → one synopsis per subcommand."""
    parts = [p.strip() for p in re.split(r"\s+/\s+", text)]
    if len(parts) == 1:
        return parts
    first = parts[0].split()
    # the group is everything of the first part before its last command word
    group = first[:-1] if len(first) > 1 else []
    for k, word in enumerate(first):
        if k > 0 and (word.startswith("-") or word.startswith("[") or word.isupper() or word in {"…"}):
            group = first[: k - 1]
            break
    return [parts[0], *(" ".join([*group, p]) for p in parts[1:])]


def documented_commands() -> list[tuple[str, str]]:
    """(where, command text) for every custody command in the documents."""
    found: list[tuple[str, str]] = []
    for path in _documents():
        text = path.read_text(encoding="utf-8")
        name = _relative(path)
        for match in FENCE.finditer(text):
            if match.group(1) not in SHELL_LANGUAGES:
                continue
            line = text[: match.start(2)].count("\n") + 1
            try:
                commands = _shell_commands(match.group(2))
            except ValueError:  # reported by test_code_blocks_are_valid_shell
                continue
            for offset, words in commands:
                found.append((f"{name}:{line + offset}", " ".join(words)))
        prose = FENCE.sub(lambda m: "\n" * m.group(0).count("\n"), text)
        in_command_table = False
        for number, line in enumerate(prose.splitlines(), start=1):
            if line.startswith("| command |"):
                in_command_table = True
            elif not line.startswith("|"):
                in_command_table = False
            spans = INLINE.findall(line)
            if in_command_table and line.startswith("| `") and spans:
                for synopsis in _expand_alternatives(spans[0]):
                    found.append((f"{name}:{number}", f"custody {synopsis}"))
                spans = spans[1:]
            for span in spans:
                if span.startswith("custody ") or span.startswith(".venv/bin/custody "):
                    for synopsis in _expand_alternatives(span.split(" ", 1)[1]):
                        found.append((f"{name}:{number}", f"custody {synopsis}"))
    return found


def test_the_documents_show_custody_commands():
    where = {w.split(":")[0] for w, _ in documented_commands()}
    assert {"README.md", "docs/cli.md", "docs/quickstart.md", "docs/resilience.md", "docs/audit-ledger.md"} <= where


@pytest.mark.parametrize(("where", "command"), documented_commands())
def test_every_documented_custody_command_exists(where, command):
    problems = check_command(_synopsis_words(command))
    assert not problems, f"{where}: `{command}`: {'; '.join(problems)}"


def test_the_command_check_catches_a_wrong_command_or_option():
    assert check_command(_synopsis_words("custody vault create FILE --name N")) == []
    assert check_command(_synopsis_words("custody --home D --attester URI drill run P --vault V")) == []
    assert check_command(_synopsis_words("custody collateral deploy|register|list|issue")) == []
    assert check_command(_synopsis_words("custody vault creat FILE")) == ["custody vault has no command 'creat'"]
    assert check_command(_synopsis_words("custody tx propose V --too A")) == ["custody tx propose has no option --too"]
    assert check_command(_synopsis_words("custody --homes D vault list")) == ["unknown global option --homes"]
    assert check_command(_synopsis_words("custody collateral deploy|regster")) == [
        "custody collateral has no command 'regster'"
    ]


def test_code_blocks_are_valid_shell():
    for path in _documents():
        text = path.read_text(encoding="utf-8")
        for match in FENCE.finditer(text):
            if match.group(1) in SHELL_LANGUAGES and re.search(r"^\s*(\./|\.venv|custody )", match.group(2), re.M):
                try:
                    _shell_commands(match.group(2))
                except ValueError as exc:  # e.g. an unquoted ledger:44'/60'/… path
                    line = text[: match.start(2)].count("\n") + 1
                    pytest.fail(f"{_relative(path)}:{line}: not valid shell ({exc})")


# --- benchmark and script invocations ---------------------------------------------------------------

SCRIPT_CALL = re.compile(
    r"(?:(?<=\s)|^)(?:\./)?(scripts/[\w-]+|benchmarks/[\w/]+\.py|-m benchmarks\.[\w.]+)((?:\s+[^\s`|#]+)*)"
)


def _script_sources(target: str) -> list[Path] | None:
    """The source files whose text must name a documented option, or None when options go to pytest."""
    if target.startswith("-m "):
        module = target[3:].replace(".", "/")
        return [p for p in (REPO / f"{module}.py", REPO / module / "__main__.py") if p.is_file()]
    path = REPO / target
    if target == "scripts/test":
        return None  # extra arguments go to pytest; --fast is the script's own
    sources = [path]
    called = re.search(r"exec \.venv/bin/python -m ([\w.]+)", path.read_text(encoding="utf-8"))
    if called:
        sources += _script_sources(f"-m {called.group(1)}") or []
    return sources


def test_every_documented_script_option_exists():
    problems = []
    for path in _documents():
        text = path.read_text(encoding="utf-8")
        snippets = INLINE.findall(text) + [line for m in FENCE.finditer(text) for line in m.group(2).splitlines()]
        for snippet in snippets:
            for target, rest in SCRIPT_CALL.findall(snippet):
                if not target.startswith("-m ") and not (REPO / target).is_file():
                    continue  # reported by the path check
                options = [w.split("=")[0] for w in _synopsis_words(rest) if w.startswith("--")]
                if target == "scripts/pilot":
                    problems += [f"{_relative(path)}: {p}" for p in check_command(["custody", "pilot", *options])]
                    continue
                sources = _script_sources(target)
                if sources is None:
                    continue
                if not sources:
                    problems.append(f"{_relative(path)}: {target} names no module")
                    continue
                source = "\n".join(s.read_text(encoding="utf-8") for s in sources)
                problems += [
                    f"{_relative(path)}: {target} has no option {o}"
                    for o in options
                    if not re.search(rf"{re.escape(o)}(?![\w-])", source)
                ]
    assert not problems, "\n".join(problems)


# --- the README's commands ------------------------------------------------------------------------


def _strip_comment(line: str) -> str:
    return re.sub(r"\s+#\s.*$", "", line).rstrip()


def test_the_readme_tour_runs_as_part_of_the_tested_quickstart():
    text = README.read_text(encoding="utf-8")
    tour_section = text.split("## A 10-line tour", 1)[1].split("\n## ", 1)[0]
    tours = re.findall(r"^```sh\n(.*?)^```$", tour_section, re.M | re.S)
    assert len(tours) == 1, "the README's tour is one ```sh block"
    tour = [_strip_comment(line) for line in tours[0].splitlines() if line.strip()]
    assert 8 <= len(tour) <= 15
    from tests.test_quickstart import QUICKSTART, shell_blocks

    quickstart = [_strip_comment(line) for b in shell_blocks(QUICKSTART.read_text()) for line in b.splitlines()]
    position = 0
    for line in tour:
        assert line in quickstart[position:], f"README tour line not in docs/quickstart.md (in order): {line}"
        position = quickstart.index(line, position) + 1


def test_the_readme_test_command_is_what_ci_runs():
    text = README.read_text(encoding="utf-8")
    commands = text.split("## The two commands", 1)[1].split("```bash\n", 1)[1].split("```", 1)[0]
    lines = [_strip_comment(line) for line in commands.splitlines() if line.strip()]
    assert lines == ["./scripts/pilot", "./scripts/test"]
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    assert [line for line in ci.splitlines() if line.startswith("exec ")] == ["exec ./scripts/test"]
    assert (REPO / "scripts" / "pilot").is_file() and (REPO / "scripts" / "test").is_file()


def test_the_readme_is_a_three_minute_read():
    assert len(README.read_text(encoding="utf-8").splitlines()) <= 150


# --- links, paths, test names ---------------------------------------------------------------------

LINK = re.compile(r"\]\(([^)\s]+)\)")
REPO_PATH = re.compile(
    r"(?<![\w./-])((?:scripts|benchmarks|tests|policies|playbooks|contracts|docs|custody)/[\w./-]*\w)"
)
TEST_NAME = re.compile(r"\b(test_\w+?)(…|\.py\b|\b)")


def anchors(markdown: str) -> set[str]:
    """The GitHub anchors of a page's headings (lower case, punctuation dropped, spaces as hyphens)."""
    headings = re.findall(r"^#+ (.*)$", FENCE.sub("", markdown), re.M)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


def _test_functions() -> set[str]:
    names = set()
    for path in (REPO / "tests").rglob("*.py"):
        names |= set(re.findall(r"^\s*(?:async )?def (test_\w+)", path.read_text(encoding="utf-8"), re.M))
    return names


def test_every_relative_link_and_repository_path_resolves():
    problems = []
    for path in _documents():
        text = path.read_text(encoding="utf-8")
        for target in LINK.findall(text):
            if re.match(r"\w+:", target) or target.startswith("#"):
                continue
            page, _, anchor = target.partition("#")
            file = (path.parent / page).resolve()
            if not file.exists():
                if _relative(file) not in PENDING_PAGES:
                    problems.append(f"{_relative(path)}: link to {target} does not resolve")
            elif anchor and file.suffix == ".md" and anchor not in anchors(file.read_text(encoding="utf-8")):
                problems.append(f"{_relative(path)}: link to {target}: {page} has no heading #{anchor}")
        for span in INLINE.findall(text) + [m.group(2) for m in FENCE.finditer(text)]:
            for candidate in REPO_PATH.findall(span):
                if any(ch in candidate for ch in "*<>…") or candidate.endswith("/"):
                    continue
                if not (REPO / candidate).exists() and candidate not in PENDING_PAGES:
                    problems.append(f"{_relative(path)}: {candidate} does not exist")
    assert not problems, "\n".join(problems)


def test_every_test_a_document_names_exists():
    functions = _test_functions()
    problems = []
    for path in _documents():
        for name, suffix in TEST_NAME.findall(path.read_text(encoding="utf-8")):
            if suffix == ".py":
                if not list((REPO / "tests").rglob(f"{name}.py")):
                    problems.append(f"{_relative(path)}: tests/{name}.py does not exist")
            elif suffix == "…":
                if not any(f.startswith(name) for f in functions):
                    problems.append(f"{_relative(path)}: no test starts with {name}")
            elif name not in functions:
                problems.append(f"{_relative(path)}: no test named {name}")
    assert not problems, "\n".join(problems)


def test_the_readme_trust_model_quotes_the_security_model():
    readme = README.read_text(encoding="utf-8")
    security = (REPO / "docs" / "security.md").read_text(encoding="utf-8")
    trust = readme.split("## Trust model", 1)[1].split("\n## ", 1)[0]
    quote = [line for line in trust.splitlines() if line.startswith(">")]
    assert quote, "the README's trust model quotes the promise"
    assert "\n".join(quote) in security, "the README's promise differs from docs/security.md's"
    assert "docs/security.md" in trust
    for heading in re.findall(r"docs/security\.md#([\w-]+)", trust):
        assert heading in anchors(security), f"docs/security.md has no section #{heading}"
