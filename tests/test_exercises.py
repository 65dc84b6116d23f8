"""The exercise framework: validation and folded solutions rendered to HTML."""

import pytest

from actlab.report.exercises import Exercise, exercises_markdown
from actlab.report.markdown import render_markdown


def test_solutions_are_folded_and_markdown_inside_is_rendered():
    ex = [
        Exercise("warm-up", "Slope", "What is $\\tanh'(0)$?", "It is **1**: $1 - \\tanh^2 0$."),
        Exercise("conceptual", "Why", "Why?", "Because.\n\n```python\nprint(1)\n```"),
    ]
    md = exercises_markdown(ex)
    assert md.count('<details markdown="1">') == 2
    assert md.index("**1. Warm-up: Slope.**") < md.index("**2. Conceptual: Why.**")
    html = render_markdown(md).html
    assert html.count("<details>") == 2 and "<summary>Solution</summary>" in html
    assert "<strong>1</strong>" in html and "<math" in html
    assert '<code class="language-python">print(1)' in html


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"kind": "quiz"}, "kind must be one of"),
        ({"prompt": " "}, "needs a title"),
        ({"function": "no_colon"}, "lesson:name"),
    ],
)
def test_bad_exercises_are_refused(kwargs, match):
    base = {"kind": "coding", "title": "t", "prompt": "p", "solution": "s"}
    with pytest.raises(ValueError, match=match):
        Exercise(**{**base, **kwargs})


def test_a_title_that_is_a_question_keeps_its_question_mark_alone():
    ex = Exercise("conceptual", "Why a separate validation draw?", "Say why.", "Because.")
    md = exercises_markdown([ex])
    assert "Why a separate validation draw?**" in md and "?." not in md
    plain = exercises_markdown([Exercise("conceptual", "A rate", "Say.", "So.")])
    assert "A rate.**" in plain
