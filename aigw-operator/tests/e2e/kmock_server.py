"""An in-memory Kubernetes API (PyPI kmock) for the operator's end-to-end test.

Prints the port it listens on (127.0.0.1), then serves until killed. kmock stores
objects as JSON and merges patches; two API-server behaviours the controller relies on
are added here: server-side apply creates a missing object, and the kinds the
controller reads list as empty (not 404) before any object of them exists.
"""
import asyncio

import kmock
from kmock import action

RESOURCES = [
    "aigateway.envoyproxy.io/v1beta1/aigatewayroutes",
    "aigateway.envoyproxy.io/v1beta1/aiservicebackends",
    "aigateway.envoyproxy.io/v1beta1/backendsecuritypolicies",
    "aigateway.envoyproxy.io/v1beta1/gatewayconfigs",
    "aigateway.envoyproxy.io/v1beta1/mcproutes",
    "aigateway.envoyproxy.io/v1alpha1/quotapolicies",
    "gateway.networking.k8s.io/v1/gateways",
    "gateway.networking.k8s.io/v1/httproutes",
    "gateway.networking.k8s.io/v1/backendtlspolicies",
    "gateway.networking.k8s.io/v1beta1/referencegrants",
    "gateway.envoyproxy.io/v1alpha1/backends",
    "gateway.envoyproxy.io/v1alpha1/httproutefilters",
    "gateway.envoyproxy.io/v1alpha1/backendtrafficpolicies",
    "gateway.envoyproxy.io/v1alpha1/clienttrafficpolicies",
    "gateway.envoyproxy.io/v1alpha1/securitypolicies",
    "inference.networking.k8s.io/v1/inferencepools",
    "events.k8s.io/v1/events",
    "v1/secrets",
    "v1/configmaps",
]


class Emulator(kmock.KubernetesEmulator):
    async def _handle(self, request):
        if (
            request.resource is not None
            and request.action == action.UPDATE
            and request.name is not None
            and "apply-patch" in request.headers.get("Content-Type", "")
        ):
            key = (request.resource, request.namespace, request.name)
            async with self._lock:
                if key not in self._objects:
                    self._objects[key] = request.data
                elif self._objects[key].deleted:
                    self._objects[key].create(request.data)
                else:
                    key = None
                if key is not None:
                    raw = self._objects[key].last.raw
                    await self._buses[request.resource].put({"type": "ADDED", "object": raw})
        # The (now existing) object is patched and returned as for any update.
        return await super()._handle(request)


async def main():
    async with Emulator() as k8s, kmock.Server(k8s) as server:
        for r in RESOURCES:
            k8s.resources[r].namespaced = True
        print(server.port, flush=True)
        await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main())
