"""Flowgate's test kit, for a business testing its own flows the way Flowgate tests its own:
a real redis-server, the real app behind real HTTP on loopback, WhatsApp's side played through
the encrypted protocol, and a stand-in for the business's own lookup API.

In a test module (``flask flows new`` writes one)::

    from testkit.fixtures import business_api, flowgate, flowgate_redis  # noqa: F401  (fixtures)

    def test_a_known_code_is_accepted(flowgate, business_api):
        business_api.records["members"]["MEM123"] = {"name": "Ana"}
        app = flowgate(MEMBERS_API_URL=business_api.url("members"))
        client = app.client("member_check")
        assert client.init("tok-1").screen == "START"

Nothing here is imported by the app itself.
"""
from testkit.business_api import BusinessAPI
from testkit.server import FlowgateServer, RedisProcess

__all__ = ["BusinessAPI", "FlowgateServer", "RedisProcess"]
