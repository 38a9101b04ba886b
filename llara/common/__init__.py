"""Errors, atomic writes, paths, registry wheels, device and precision: used by every layer."""

from llara.common.atomic import (ForeignFilesError, atomic_file, atomic_directory,
                                 ensure_replaceable, foreign_entries, write_json)
from llara.common.digest import file_digest, folder_digest, short_digest
from llara.common.device import (resolve_device, cpu_has_bf16, native_bf16, uses_bf16,
                                 autocast_for, deepspeed_bf16, base_dtype,
                                 attention_implementation)
from llara.common.errors import (LlaraError, ConfigError, DataError, find_llara_error, error_line,
                                 llara_error_in_text)
from llara.common.paths import PATH, PATH_OR_NAME, is_remote, absolute_path, absolute_paths
from llara.common.wheels import WheelDownloadError, sha256_file, download_wheel

__all__ = [
    "ForeignFilesError",
    "atomic_file",
    "ensure_replaceable",
    "foreign_entries",
    "atomic_directory",
    "write_json",
    "resolve_device",
    "cpu_has_bf16",
    "native_bf16",
    "uses_bf16",
    "autocast_for",
    "deepspeed_bf16",
    "base_dtype",
    "attention_implementation",
    "LlaraError",
    "ConfigError",
    "DataError",
    "find_llara_error",
    "error_line",
    "llara_error_in_text",
    "PATH",
    "PATH_OR_NAME",
    "is_remote",
    "absolute_path",
    "absolute_paths",
    "WheelDownloadError",
    "sha256_file",
    "download_wheel",
    "file_digest",
    "folder_digest",
    "short_digest",
]
