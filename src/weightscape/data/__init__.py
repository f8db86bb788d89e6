"""Tasks: labelled text datasets, seeded splits and subsets, local tables and built-in real data;
text tasks (documents scored by language-model loss, ``text:PATH``).

Light to import: numpy only; pandas, pyarrow and ``datasets`` load when a table is read.

>>> from weightscape.data import make_task, split
>>> task = make_task("toy", [f"text {i}" for i in range(20)], [i % 2 for i in range(20)],
...                  ("negative", "positive"))
>>> sorted((key, len(part)) for key, part in split(task, seed=1).items())
[('test', 2), ('train', 16), ('validation', 2)]
"""

from __future__ import annotations

from weightscape.data import generated as _generated  # noqa: F401 (registers generated tasks)
from weightscape.data.builtin import BUILTIN_TASKS, BuiltinTask, load_builtin, load_task
from weightscape.data.splits import split, subset
from weightscape.data.tables import load_table_task
from weightscape.data.task import Task, make_task
from weightscape.data.text_task import TextTask, load_text_task, make_text_task

__all__ = [
    "BUILTIN_TASKS",
    "BuiltinTask",
    "Task",
    "TextTask",
    "load_builtin",
    "load_table_task",
    "load_task",
    "load_text_task",
    "make_task",
    "make_text_task",
    "split",
    "subset",
]
