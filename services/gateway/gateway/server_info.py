"""GatewayService: what is serving behind the edge."""

from __future__ import annotations

import grpc

from switchboard.gateway.v1 import gateway_pb2, gateway_pb2_grpc


class ServerInfoServicer(gateway_pb2_grpc.GatewayServiceServicer):
    """Answers GetServerInfo with the version and the public services."""

    def __init__(self, *, version: str, public_services: list[str]) -> None:
        self._response = gateway_pb2.GetServerInfoResponse(
            name="switchboard", version=version, services=public_services
        )

    async def GetServerInfo(
        self,
        request: gateway_pb2.GetServerInfoRequest,
        context: grpc.aio.ServicerContext[
            gateway_pb2.GetServerInfoRequest, gateway_pb2.GetServerInfoResponse
        ],
    ) -> gateway_pb2.GetServerInfoResponse:
        return self._response
