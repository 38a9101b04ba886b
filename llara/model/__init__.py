"""The LLaRA module (LLM + LoRA + projector + frozen item table), LLM loading, checkpoints."""

from llara.model.batch import PromptBatch, collate_prompts
from llara.model.checkpoint import (CHECKPOINT_FORMAT, RUN_FILE, run_payload, read_run_json,
                                    run_config_of, read_run_config, stored_fusion_weight)
from llara.model.heads import (fp32_linear, LetterHead, SlotHead, letter_label_ids, HEADS,
                               build_head)
from llara.model.llara import (PROJECTOR_FILE, HEAD_FILE, MODEL_FILES, weight_files, apply_lora, LLaRA,
                               compile_decoder_layers, build_llara, load_llara)
from llara.model.llm import (ModelLoadError, PackagedModel, PACKAGED_MODELS, TINY, tiny_tokenizer,
                             tiny_llm, add_llara_special_tokens, add_llara_tokens, load_tokenizer,
                             load_llm, fetch_packaged_model, resolve_llm)
from llara.model.projector import (mlp_projector, linear_projector, deep_mlp_projector, PROJECTORS,
                                   build_projector)

__all__ = [
    "PromptBatch",
    "collate_prompts",
    "CHECKPOINT_FORMAT",
    "RUN_FILE",
    "run_payload",
    "read_run_json",
    "run_config_of",
    "read_run_config",
    "stored_fusion_weight",
    "fp32_linear",
    "LetterHead",
    "SlotHead",
    "letter_label_ids",
    "HEADS",
    "build_head",
    "PROJECTOR_FILE",
    "HEAD_FILE",
    "MODEL_FILES",
    "weight_files",
    "apply_lora",
    "LLaRA",
    "compile_decoder_layers",
    "build_llara",
    "load_llara",
    "ModelLoadError",
    "PackagedModel",
    "PACKAGED_MODELS",
    "TINY",
    "tiny_tokenizer",
    "tiny_llm",
    "add_llara_special_tokens",
    "add_llara_tokens",
    "load_tokenizer",
    "load_llm",
    "fetch_packaged_model",
    "resolve_llm",
    "mlp_projector",
    "linear_projector",
    "deep_mlp_projector",
    "PROJECTORS",
    "build_projector",
]
