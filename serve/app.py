"""Ray Serve deployment of a trained checkpoint behind a FastAPI app (`llara serve`): a
gateway deployment holds the routes and forwards each request to a model replica.

Every request is checked by the library (`Recommender.parse`) before it joins a batch, so a bad
request gets a 4xx of its own and can never fail the other requests batched with it.
"""

# No `from __future__ import annotations`: FastAPI reads the route annotations at runtime.
import asyncio
import os
from dataclasses import dataclass

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from ray import serve

from llara.config import FinetuneConfig, ServingConfig, from_dict, to_dict
from llara.inference import Recommender, RequestError

from .api import (ERRORS, AddItemsRequest, AddItemsResponse, Health, Item, RankedItem,
                  RecommendRequest, RecommendResponse,
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


@dataclass
class Refusal:
    """A RequestError as it crosses from a model replica to the gateway: plain fields, so the
    gateway answers the 4xx it names whatever Ray does to exceptions on the way."""

    field: str
    message: str
    status: int


async def _refusing(call):
    try:
        return await call
    except RequestError as err:
        return Refusal(err.field, str(err), err.status)


REPLICA_ATTEMPTS = 4
"""A request whose model replica died under it goes to another one, up to this many tries:
recommending is a pure function of the request, so trying again is safe."""


@serve.deployment(name="llara-model", health_check_period_s=10, health_check_timeout_s=30)
class LlaraModel:
    """One model replica: the model, projector, adapter and item table, loaded once."""

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

    async def recommend(self, body: RecommendRequest) -> RecommendResponse | Refusal:
        return await _refusing(self._recommend(body))

    async def _recommend(self, body: RecommendRequest) -> RecommendResponse:
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

    async def resolve(self, text: str) -> ResolveResponse | Refusal:
        async def resolved() -> ResolveResponse:
            rec = self.recommender
            return ResolveResponse(items=[Item(id=i, title=rec.titles[i])
                                          for i in rec.resolve_text(text)])
        return await _refusing(resolved())

    async def item(self, item_id: int) -> Item | Refusal:
        async def titled() -> Item:
            return Item(id=item_id, title=self.recommender.item_title(item_id))
        return await _refusing(titled())

    async def add_items(self, body: AddItemsRequest) -> AddItemsResponse | Refusal:
        async def added() -> AddItemsResponse:
            rec = self.recommender
            values = [item.model_dump() for item in body.items]
            ids = await asyncio.to_thread(rec.add_items, values)
            return AddItemsResponse(items=[Item(id=i, title=rec.titles[i]) for i in ids],
                                    catalogue=rec.num_items)
        return await _refusing(added())

    async def health(self) -> Health:
        return Health(status="ok", model_version=self.recommender.version,
                      items=self.recommender.num_items)

    async def replica(self) -> dict:
        return {"pid": os.getpid(),
                "replica": serve.get_replica_context().replica_id.unique_id}


@serve.deployment(name="llara")
@serve.ingress(api)
class LlaraGateway:
    """The HTTP routes: each request goes to a model replica through a handle, and again to
    another when the one it went to died under it (a replica killed under load would otherwise
    answer 500s for the requests it held)."""

    def __init__(self, model):
        self.model = model  # DeploymentHandle of LlaraModel

    async def _ask(self, method: str, *args):
        from ray.exceptions import RayActorError

        for attempt in range(REPLICA_ATTEMPTS):
            try:
                result = await getattr(self.model, method).remote(*args)
                break
            except RayActorError:  # the replica died (killed, out of memory) mid-request
                if attempt == REPLICA_ATTEMPTS - 1:
                    raise
                await asyncio.sleep(0.5 * (attempt + 1))  # the router learns of the death
        if isinstance(result, Refusal):
            raise RequestError(result.field, result.message.removeprefix(f"{result.field}: "),
                               result.status)
        return result

    @api.post("/v1/recommend", response_model=RecommendResponse, responses=ERRORS)
    async def recommend(self, body: RecommendRequest) -> RecommendResponse:
        """Rank candidates for a user's history (score) or let the model name one (generate)."""
        return await self._ask("recommend", body)

    @api.post("/v1/items/resolve", response_model=ResolveResponse, responses=ERRORS)
    async def resolve(self, body: ResolveRequest) -> ResolveResponse:
        """The items a typed list names, resolved as the service resolves a request's
        titles (what `llara recommend --url` sends first)."""
        return await self._ask("resolve", body.text)

    @api.get("/v1/items/{item_id}", response_model=Item, responses=ERRORS)
    async def item(self, item_id: int) -> Item:
        """An item's title."""
        return await self._ask("item", item_id)

    @api.post("/v1/items", response_model=AddItemsResponse, responses=ERRORS)
    async def add_items(self, body: AddItemsRequest) -> AddItemsResponse:
        """Add new items to the catalogue: every replica recommends them from its next answer
        on, without retraining or a restart (needs --new-items FILE and a checkpoint
        trained with cold.content=map)."""
        return await self._ask("add_items", body)

    @api.get("/healthz", response_model=Health)
    async def healthz(self) -> Health:
        """Ready: a model replica has its model loaded."""
        return await self._ask("health")

    @api.get("/v1/replica", include_in_schema=False)
    async def replica(self) -> dict:
        """Which model replica process answered (tests and load balancing checks)."""
        return await self._ask("replica")


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


def application(config: ServingConfig, run: FinetuneConfig):
    """The bound Serve application for `config` (paths absolute) and the checkpoint's run
    config as the driver checked it (`checked_run_config`)."""
    options = deployment_options(config)
    model = LlaraModel.options(**options).bind(to_dict(config), to_dict(run))
    # One gateway replica: it only forwards and holds no model, and lets through as many
    # requests as all model replicas take, so their batches still fill.
    most = config.max_replicas if config.autoscale else config.replicas
    return LlaraGateway.options(num_replicas=1, ray_actor_options={"num_cpus": 0},
                                max_ongoing_requests=options["max_ongoing_requests"] * most
                                ).bind(model)
