"""Ray Serve deployment of a trained checkpoint behind a FastAPI app (`llara serve`).

Every request is checked by the library (`Recommender.parse`) before it joins a batch, so a bad
request gets a 4xx of its own and can never fail the other requests batched with it.
"""

# No `from __future__ import annotations`: FastAPI reads the route annotations at runtime.
import asyncio
import os

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from ray import serve

from llara.common import absolute_paths
from llara.config import FinetuneConfig, ServingConfig, from_dict, to_dict
from llara.inference import Recommender, RequestError
from llara.model import read_run_config

from .api import (ERRORS, Health, Item, RankedItem, RecommendRequest, RecommendResponse,
                  ResolveRequest, ResolveResponse)

api = FastAPI(title="LLaRA recommendation service", version="1",
              description="Next-item recommendation with a LLaRA checkpoint (hybrid item "
              "prompts, LoRA-tuned LLM).")


@api.exception_handler(RequestError)
async def _request_error(request: Request, err: RequestError) -> JSONResponse:
    return JSONResponse({"detail": str(err), "field": err.field}, status_code=err.status)


@api.exception_handler(RequestValidationError)
async def _invalid_body(request: Request, err: RequestValidationError) -> JSONResponse:
    first = err.errors()[0] if err.errors() else {}
    loc = list(first.get("loc", ()))
    if first.get("type") == "json_invalid":  # loc is ("body", character position)
        return JSONResponse({"detail": f"body: not valid JSON ({first.get('msg')} at character "
                             f"{loc[-1]})", "field": "body"}, status_code=422)
    where = ".".join(str(p) for p in (loc[1:] if loc[:1] == ["body"] else loc)) or "body"
    return JSONResponse({"detail": f"{where}: {first.get('msg', 'invalid request')}",
                         "field": where}, status_code=422)


def _answer(result):
    """A batch answers each query alone: a query that failed gets its own error (a 4xx for a
    RequestError, else a 500), never the queries batched with it. (Above the deployment:
    Serve captures the ingress app's globals when the class is decorated.)"""
    if isinstance(result, Exception):
        raise result
    return result


@serve.deployment(name="llara", health_check_period_s=10, health_check_timeout_s=30)
@serve.ingress(api)
class LlaraDeployment:
    """One replica: the model, projector, adapter and item table, loaded once."""

    def __init__(self, config: dict, run: dict):
        import torch

        self.config = from_dict(ServingConfig, config)
        if self.config.gpus_per_replica == 0:
            # Ray pins a replica to one thread per reserved CPU, rounded down (0 for a share).
            torch.set_num_threads(max(1, int(self.config.cpus_per_replica)))
        # The checkpoint's run config as the driver read it: the replica's working directory
        # is not the user's.
        self.recommender = Recommender.load(self.config, log=lambda *_: None,
                                            run=from_dict(FinetuneConfig, run))
        wait = self.config.batch_wait_ms / 1000
        for batched in (self._score_batch, self._generate_batch):
            batched.set_max_batch_size(self.config.max_batch_size)
            batched.set_batch_wait_timeout_s(wait)

    @serve.batch(max_batch_size=16, batch_wait_timeout_s=0.005)
    async def _score_batch(self, queries):
        # The forward pass runs in a thread so the replica keeps accepting requests meanwhile.
        return await asyncio.to_thread(self.recommender.rank, queries)

    @serve.batch(max_batch_size=16, batch_wait_timeout_s=0.005)
    async def _generate_batch(self, queries):
        return await asyncio.to_thread(self.recommender.generate, queries)

    @api.post("/v1/recommend", response_model=RecommendResponse, responses=ERRORS)
    async def recommend(self, body: RecommendRequest) -> RecommendResponse:
        """Rank candidates for a user's history (score) or let the model name one (generate)."""
        rec = self.recommender
        # Parsing may retrieve (a recommender forward pass): off the event loop too.
        query = await asyncio.to_thread(rec.parse, body.history, body.candidates, body.pin,
                                        body.k, body.mode, body.seed)

        def ranked_item(item: int, score: float | None = None) -> RankedItem:
            source, rank = query.origin(item)
            return RankedItem(id=item, title=rec.titles[item], score=score, source=source,
                              recommender_rank=rank)

        if query.mode == "score":
            ranked = _answer(await self._score_batch(query))
            items = [ranked_item(i, s) for i, s in ranked]
            answer = None
        else:
            answer, picked = _answer(await self._generate_batch(query))
            items = [] if picked is None else [ranked_item(picked)]
        return RecommendResponse(items=items, candidates=query.candidates, mode=query.mode,
                                 answer=answer, model_version=rec.version)

    @api.post("/v1/items/resolve", response_model=ResolveResponse, responses=ERRORS)
    async def resolve(self, body: ResolveRequest) -> ResolveResponse:
        """The items a typed list names, resolved as the service resolves a request's
        titles (what `llara recommend --url` sends first)."""
        rec = self.recommender
        items = rec.resolve_text(body.text)
        return ResolveResponse(items=[Item(id=i, title=rec.titles[i]) for i in items])

    @api.get("/v1/items/{item_id}", response_model=Item, responses=ERRORS)
    async def item(self, item_id: int) -> Item:
        """An item's title."""
        return Item(id=item_id, title=self.recommender.item_title(item_id))

    @api.get("/healthz", response_model=Health)
    async def healthz(self) -> Health:
        """Ready: this replica has its model loaded."""
        return Health(status="ok", model_version=self.recommender.version,
                      items=self.recommender.num_items)

    @api.get("/v1/replica", include_in_schema=False)
    async def replica(self) -> dict:
        """Which replica process answered (tests and load balancing checks)."""
        return {"pid": os.getpid(),
                "replica": serve.get_replica_context().replica_id.unique_id}


def deployment_options(config: ServingConfig) -> dict:
    """Replicas, resources and autoscaling for `config`, as Serve's deployment options."""
    options = {"ray_actor_options": {"num_cpus": config.cpus_per_replica,
                                     "num_gpus": config.gpus_per_replica},
               # Enough requests in flight per replica to fill a batch, with one queued behind.
               "max_ongoing_requests": max(8, 2 * config.max_batch_size)}
    if config.autoscale:
        options["autoscaling_config"] = {
            "min_replicas": config.min_replicas, "max_replicas": config.max_replicas,
            "target_ongoing_requests": config.target_ongoing_requests}
    else:
        options["num_replicas"] = config.replicas
    return options


def application(config: ServingConfig):
    """The bound Serve application for `config`, its paths made absolute here."""
    config = absolute_paths(config)
    run = read_run_config(config.checkpoint)
    return LlaraDeployment.options(**deployment_options(config)).bind(to_dict(config),
                                                                       to_dict(run))
