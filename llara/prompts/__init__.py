"""Prompt templates, hybrid/text rendering, tokenisation with slot positions, the builder."""

from llara.prompts.builder import PromptBuilder
from llara.prompts.templates import (SPECIAL_TOKENS, COUNT_FIELD, TEMPLATES, ANSWER_END,
                                     load_templates, templates_for, render_prompt, pick_template)
from llara.prompts.tokenize import (TokenizedPrompt, PromptTooLong, tokenize_prompt,
                                    tokenize_prompts)

__all__ = [
    "PromptBuilder",
    "SPECIAL_TOKENS",
    "COUNT_FIELD",
    "TEMPLATES",
    "ANSWER_END",
    "load_templates",
    "templates_for",
    "render_prompt",
    "pick_template",
    "TokenizedPrompt",
    "PromptTooLong",
    "tokenize_prompt",
    "tokenize_prompts",
]
