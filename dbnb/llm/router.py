"""Sampling over many deployments through ``litellm.Router``: the deployments file.

A *deployments file* is litellm Router's own ``model_list``, as JSON or YAML (YAML needs
PyYAML, which litellm already depends on)::

    model_list:
      - model_name: local/smollm2            # the name dbnb requests use (and key on)
        litellm_params:
          model: openai/smollm2              # what litellm calls
          api_base: http://10.0.0.1:8000/v1
          api_key: os.environ/GPU1_KEY       # a key is only ever named, never written
                                             # ("EMPTY"/"none": a server with no auth)
          rpm: 600
        model_info: {id: gpu1}               # the deployment's name in each record
      - model_name: local/smollm2
        litellm_params: {model: openai/smollm2, api_base: "http://10.0.0.2:8000/v1",
                         api_key: os.environ/GPU2_KEY}
    router_settings: {num_retries: 3, allowed_fails: 1, cooldown_time: 30}

The file may also be a bare list of entries. The Router does load balancing, rpm/tpm limits,
retries, cool-downs and fallbacks; an entry's ``rpm``/``tpm`` is enforced by litellm's
``enforce_model_rate_limits`` unless the file chooses a usage-based strategy or its own
pre-call checks (:meth:`Deployments.settings`), and a call over a limit waits for the next
minute rather than failing (:mod:`dbnb.llm.routing`). dbnb keeps the store (one record per
finished call, with the deployment that served it in ``record["deployment"]``), replay and
pay-once.

:func:`load_deployments` checks the whole file before any call and raises
:class:`DeploymentsError` naming the entry: an unknown key, a missing ``model_name`` or
``litellm_params.model``, an ``os.environ/NAME`` whose variable is not set, a secret written in
clear. :meth:`Deployments.check_models` names a requested model that no entry serves.

The store key is the requested model name (``model_name``), the messages and the sampling
parameters, never the endpoint: a run is the same store whether it went through one deployment
or several.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .store import is_secret_name

__all__ = ["Deployments", "DeploymentsError", "load_deployments", "ENV_PREFIX",
           "PLACEHOLDER_KEYS"]

ENV_PREFIX = "os.environ/"
_ENTRY_KEYS = frozenset({"model_name", "litellm_params", "model_info", "rpm", "tpm"})
_FILE_KEYS = frozenset({"model_list", "router_settings"})
# Router(...) keyword arguments a file may set; everything about *how* to call, nothing about
# what to sample.
_ROUTER_SETTINGS = frozenset({
    "routing_strategy", "num_retries", "retry_after", "timeout", "allowed_fails",
    "cooldown_time", "fallbacks", "context_window_fallbacks", "default_fallbacks",
    "retry_policy", "allowed_fails_policy", "disable_cooldowns", "max_fallbacks",
    "enable_pre_call_checks", "routing_strategy_args", "stream_timeout",
    "default_max_parallel_requests", "optional_pre_call_checks",
})
# Routing strategies under which litellm itself enforces a deployment's rpm/tpm.
_LIMITING_STRATEGIES = frozenset({"usage-based-routing", "usage-based-routing-v2"})
_ENFORCE = "enforce_model_rate_limits"
# litellm_params that are sampling parameters: they belong to the request (and its key),
# not to a deployment, or runs through different deployments would differ silently.
_SAMPLING = frozenset({
    "temperature", "top_p", "top_k", "min_p", "max_tokens", "seed", "n", "stop",
    "presence_penalty", "frequency_penalty", "repeat_penalty", "logit_bias", "extra_body",
    "response_format", "logprobs", "top_logprobs",
})


# Placeholders accepted in clear for servers without authentication (vLLM's "EMPTY", ...).
PLACEHOLDER_KEYS = frozenset({"none", "empty", "dummy", "local", "no-key", "sk-no-key-required"})


class DeploymentsError(ValueError):
    """A deployments file that cannot be used; the message names the entry."""


@dataclass(frozen=True)
class Deployments:
    """A checked deployments file: litellm Router's ``model_list`` and its settings.

    Attributes
    ----------
    model_list : tuple of dict
        The entries, each with ``model_info.id`` filled in (``"<model_name>#<i>"`` by default).
    router_settings : dict
        Keyword arguments of ``litellm.Router`` (``num_retries``, ``cooldown_time``, ...).
    source : str
        Where the entries came from (a path or ``"<python>"``).
    """

    model_list: tuple
    router_settings: dict
    source: str = "<python>"

    @property
    def model_names(self) -> list[str]:
        """The model names the entries serve, sorted."""
        return sorted({e["model_name"] for e in self.model_list})

    @property
    def ids(self) -> list[str]:
        """The deployment ids, in file order."""
        return [e["model_info"]["id"] for e in self.model_list]

    def check_models(self, models: Iterable[str]) -> None:
        """Raise :class:`DeploymentsError` if a model is served by no entry."""
        served = set(self.model_names)
        for m in sorted(set(models)):
            if m not in served:
                raise DeploymentsError(
                    f"{self.source}: no entry serves model {m!r}; the entries serve "
                    f"{self.model_names} (a request's model must equal an entry's model_name)"
                )

    @property
    def has_limits(self) -> bool:
        """Whether some entry sets ``rpm`` or ``tpm`` (in the entry or its litellm_params)."""
        return any(k in e or k in e["litellm_params"] for e in self.model_list
                   for k in ("rpm", "tpm"))

    def settings(self, **overrides: Any) -> dict:
        """The ``litellm.Router`` keyword arguments: the file's settings, then `overrides`.

        An entry's ``rpm``/``tpm`` is a limit: under litellm's default ``simple-shuffle`` it is
        only a routing weight, so unless the file picks a usage-based strategy or lists its
        own ``optional_pre_call_checks``, ``enforce_model_rate_limits`` is added (litellm's
        exact per-minute check; dbnb waits out its refusals, :mod:`dbnb.llm.routing`).
        """
        settings = {**self.router_settings, **overrides}
        if (self.has_limits and settings.get("routing_strategy") not in _LIMITING_STRATEGIES
                and "optional_pre_call_checks" not in settings):
            settings["optional_pre_call_checks"] = [_ENFORCE]
        return settings

    def router(self, **overrides: Any):
        """A fresh ``litellm.Router`` over the entries (keys resolved by litellm)."""
        from .client import _import_litellm

        litellm = _import_litellm()
        return litellm.Router(model_list=[_copy(e) for e in self.model_list],
                              **self.settings(**overrides))


def _copy(obj: Any) -> Any:
    return json.loads(json.dumps(obj))


def _where(source: str, i: int, entry: Any) -> str:
    name = entry.get("model_name") if isinstance(entry, Mapping) else None
    return f"{source}: model_list[{i}]" + (f" ({name!r})" if name else "")


def _check_secrets(obj: Any, where: str, path: str = "") -> None:
    """Every secret-like value must be an ``os.environ/NAME`` reference to a set variable."""
    if isinstance(obj, Mapping):
        for k, v in obj.items():
            _check_secrets(v, where, f"{path}.{k}" if path else str(k))
            if (is_secret_name(str(k)) and isinstance(v, str) and not v.startswith(ENV_PREFIX)
                    and v.lower() not in PLACEHOLDER_KEYS):
                raise DeploymentsError(
                    f"{where}: {path + '.' if path else ''}{k} is written in clear; name an "
                    f"environment variable instead ({k}: os.environ/NAME), so that no key is "
                    "ever stored"
                )
    elif isinstance(obj, list):
        for j, v in enumerate(obj):
            _check_secrets(v, where, f"{path}[{j}]")
    elif isinstance(obj, str) and obj.startswith(ENV_PREFIX):
        name = obj[len(ENV_PREFIX):]
        if not name or name not in os.environ:
            raise DeploymentsError(
                f"{where}: {path} names environment variable {name!r}, which is not set "
                f"(export {name or 'NAME'}=...)"
            )


def _check_entry(i: int, entry: Any, source: str) -> dict:
    where = _where(source, i, entry)
    if not isinstance(entry, Mapping):
        raise DeploymentsError(f"{where}: an entry must be a mapping, got {entry!r}")
    unknown = sorted(set(entry) - _ENTRY_KEYS)
    if unknown:
        raise DeploymentsError(
            f"{where}: unknown key(s) {unknown}; an entry has {sorted(_ENTRY_KEYS)}")
    name = entry.get("model_name")
    if not isinstance(name, str) or not name.strip():
        raise DeploymentsError(f"{where}: model_name must be a non-empty string, got {name!r}")
    lp = entry.get("litellm_params")
    if not isinstance(lp, Mapping) or not isinstance(lp.get("model"), str) or not lp["model"]:
        raise DeploymentsError(
            f"{where}: litellm_params must be a mapping with a 'model' string (what litellm "
            f"calls, e.g. openai/smollm2), got {lp!r}")
    for k in ("rpm", "tpm"):
        for src, v in ((k, entry.get(k)), (f"litellm_params.{k}", lp.get(k))):
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float))
                                  or not v >= 1):
                raise DeploymentsError(
                    f"{where}: {src} must be a number of at least 1 per minute, got {v!r} "
                    "(litellm would admit no call, and every call would wait forever)")
    sampling = sorted(set(lp) & _SAMPLING)
    if sampling:
        raise DeploymentsError(
            f"{where}: litellm_params sets sampling parameter(s) {sampling}; sampling "
            "parameters belong to the request (they are part of every record and key), not "
            "to a deployment")
    info = entry.get("model_info", {})
    if not isinstance(info, Mapping):
        raise DeploymentsError(f"{where}: model_info must be a mapping, got {info!r}")
    _check_secrets(entry, where)
    out = _copy(dict(entry))
    out.setdefault("model_info", {})
    out["model_info"].setdefault("id", f"{name}#{i}")
    if not isinstance(out["model_info"]["id"], str):
        raise DeploymentsError(f"{where}: model_info.id must be a string")
    return out


def load_deployments(
    spec: str | os.PathLike | Mapping[str, Any] | Sequence[Mapping[str, Any]] | Deployments,
) -> Deployments:
    """Read and check a deployments file (JSON or YAML) or the same data from Python.

    Parameters
    ----------
    spec : path, mapping, list of mapping or Deployments
        A ``.json`` / ``.yaml`` / ``.yml`` file, a mapping with ``model_list`` (and optionally
        ``router_settings``), or the ``model_list`` itself.

    Returns
    -------
    Deployments

    Raises
    ------
    DeploymentsError
        The file has a mistake; the message names the entry.
    FileNotFoundError
        No such file.

    Examples
    --------
    >>> d = load_deployments([{"model_name": "m", "litellm_params": {"model": "openai/m"}}])
    >>> d.ids, d.model_names
    (['m#0'], ['m'])
    """
    if isinstance(spec, Deployments):
        return spec
    source = "<python>"
    if isinstance(spec, (str, os.PathLike)):
        path = Path(spec)
        source = str(path)
        text = path.read_text(encoding="utf-8")
        if path.suffix.lower() in (".yaml", ".yml"):
            import yaml

            try:
                spec = yaml.safe_load(text)
            except yaml.YAMLError as exc:
                raise DeploymentsError(f"{source}: not valid YAML: {exc}") from None
        else:
            try:
                spec = json.loads(text)
            except ValueError as exc:
                raise DeploymentsError(
                    f"{source}: not valid JSON ({exc}); YAML files must end in .yaml or .yml"
                ) from None
    if isinstance(spec, Mapping):
        unknown = sorted(set(spec) - _FILE_KEYS)
        if unknown:
            raise DeploymentsError(
                f"{source}: unknown top-level key(s) {unknown}; expected {sorted(_FILE_KEYS)}")
        entries, settings = spec.get("model_list"), spec.get("router_settings") or {}
    else:
        entries, settings = spec, {}
    if isinstance(entries, (str, bytes)) or not isinstance(entries, Sequence) or not entries:
        raise DeploymentsError(f"{source}: model_list must be a non-empty list of entries")
    if not isinstance(settings, Mapping):
        raise DeploymentsError(f"{source}: router_settings must be a mapping")
    bad = sorted(set(settings) - _ROUTER_SETTINGS)
    if bad:
        raise DeploymentsError(
            f"{source}: router_settings: unknown key(s) {bad}; known: {sorted(_ROUTER_SETTINGS)}")
    checked = [_check_entry(i, e, source) for i, e in enumerate(entries)]
    ids = [e["model_info"]["id"] for e in checked]
    dup = sorted({x for x in ids if ids.count(x) > 1})
    if dup:
        raise DeploymentsError(f"{source}: model_info.id repeated: {dup}")
    _check_secrets(dict(settings), f"{source}: router_settings")
    return Deployments(tuple(checked), _copy(dict(settings)), source)
