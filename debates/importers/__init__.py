"""Importers that turn datasets into DebateLab questions, debates and verdicts.

- question_rows: read and check a JSONL or CSV question file (pure, no Django).
- questions: store checked question rows, idempotent on (source, id).
- nyu_format: read one room of the NYU debate dataset (2023) into a plan (pure, no Django).
- nyu: store planned NYU rooms as questions, debates, turns, events and verdicts.

The file formats are described in docs/datasets.md.
"""
