"""Prompt templates, hybrid/text rendering, tokenisation with slot positions, the builder."""

from llara.prompts.builder import PromptBuilder
from llara.prompts.templates import (USER_SLOT, SPECIAL_TOKENS, COUNT_FIELD, USER_FIELD, USER_TEXT,
                                     FIELDS, SLOT_KINDS, LETTER_LABELS, TEMPLATES, ANSWER_END,
                                     load_templates, run_templates, templates_for, slot_layout,
                                     render_prompt, pick_template)
from llara.prompts.tokenize import (TokenizedPrompt, PromptTooLong, tokenize_prompts,
                                    tokenize_prompt)

__all__ = [
    "PromptBuilder",
    "USER_SLOT",
    "SPECIAL_TOKENS",
    "COUNT_FIELD",
    "USER_FIELD",
    "USER_TEXT",
    "FIELDS",
    "SLOT_KINDS",
    "LETTER_LABELS",
    "TEMPLATES",
    "ANSWER_END",
    "load_templates",
    "run_templates",
    "templates_for",
    "slot_layout",
    "render_prompt",
    "pick_template",
    "TokenizedPrompt",
    "PromptTooLong",
    "tokenize_prompts",
    "tokenize_prompt",
]
