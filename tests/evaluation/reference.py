"""The reference the scoring tests compare with: one candidate's title log-likelihood after
its prompt, as one plain sequence through the model's own forward pass."""

import torch

from llara.model.batch import collate_prompts
from llara.prompts.tokenize import TokenizedPrompt


def title_log_likelihood(model, builder, samples, candidates, template, row: int, k: int,
                         title: str) -> float:
    (prompt,) = builder.build(samples, candidates, [row], template, True, False)
    answer = builder.tokenizer(" " + title + "\n", add_special_tokens=False)["input_ids"]
    full = TokenizedPrompt(prompt.input_ids + answer,
                           [False] * len(prompt.input_ids) + [True] * len(answer),
                           prompt.slot_positions, prompt.slot_items)
    batch = collate_prompts([full], builder.tokenizer.pad_token_id)
    with torch.no_grad():
        hidden = model.hidden_states(batch, hybrid=True)[0, :-1]
        logprobs = torch.log_softmax(model.token_logits(hidden), -1)
    targets = batch.input_ids[0, 1:]
    return float(logprobs[torch.arange(len(targets)), targets][batch.label_mask[0, 1:]].sum())
