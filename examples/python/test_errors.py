"""The client's reading of the broker's error details and its retry policy,
without a broker: google.rpc.Status trailers encoded by hand, as the broker
sends them (src/server/errors.ts)."""

from __future__ import annotations

import unittest
from typing import Any

import grpc

from seqcast_client.errors import error_details
from seqcast_client.retry import is_retryable, retry_delay


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def field(number: int, value: bytes | int) -> bytes:
    if isinstance(value, int):
        return varint(number << 3) + varint(value)
    return varint(number << 3 | 2) + varint(len(value)) + value


def status(*details: tuple[str, bytes]) -> bytes:
    encoded = field(1, 8) + field(2, b"too many rooms")
    for type_url, value in details:
        encoded += field(3, field(1, type_url.encode()) + field(2, value))
    return encoded


def error_info(reason: str, domain: str = "seqcast.v1") -> tuple[str, bytes]:
    return "type.googleapis.com/google.rpc.ErrorInfo", field(1, reason.encode()) + field(2, domain.encode())


def retry_info(seconds: int, nanos: int) -> tuple[str, bytes]:
    return "type.googleapis.com/google.rpc.RetryInfo", field(1, field(1, seconds) + field(2, nanos))


class FakeCall:
    def __init__(self, code: grpc.StatusCode, trailers: Any) -> None:
        self._code, self._trailers = code, trailers

    def code(self) -> grpc.StatusCode:
        return self._code

    def trailing_metadata(self) -> Any:
        return self._trailers


class ErrorDetailsTest(unittest.TestCase):
    def test_reads_the_reason_and_the_retry_delay(self) -> None:
        call = FakeCall(grpc.StatusCode.RESOURCE_EXHAUSTED,
                        [("grpc-status-details-bin", status(error_info("RATE_LIMITED"), retry_info(1, 500_000_000)))])
        details = error_details(call)
        self.assertEqual(details.reason, "RATE_LIMITED")
        self.assertEqual(details.retry_after, 1.5)
        self.assertGreaterEqual(retry_delay(call, 0), 1.5)

    def test_ignores_other_domains_missing_and_malformed_details(self) -> None:
        self.assertIsNone(error_details(FakeCall(grpc.StatusCode.INTERNAL, [("grpc-status-details-bin", status(error_info("X", "other.v1")))])).reason)
        self.assertIsNone(error_details(FakeCall(grpc.StatusCode.UNAVAILABLE, None)).reason)
        self.assertIsNone(error_details(FakeCall(grpc.StatusCode.UNAVAILABLE, [("grpc-status-details-bin", b"\x1a\xff")])).reason)
        self.assertIsNone(error_details(object()).reason)


class RetryPolicyTest(unittest.TestCase):
    def test_the_reason_decides_over_the_code(self) -> None:
        exhausted = grpc.StatusCode.RESOURCE_EXHAUSTED
        self.assertFalse(is_retryable(exhausted, "ROOM_LIMIT"), "asking again cannot help")
        self.assertTrue(is_retryable(exhausted, "SLOW_CONSUMER"))
        self.assertTrue(is_retryable(exhausted, "RATE_LIMITED"))
        self.assertTrue(is_retryable(grpc.StatusCode.UNAVAILABLE, "SHUTTING_DOWN"))
        self.assertFalse(is_retryable(grpc.StatusCode.PERMISSION_DENIED, "ROOM_FORBIDDEN"))

    def test_without_a_known_reason_the_code_decides(self) -> None:
        self.assertTrue(is_retryable(grpc.StatusCode.UNAVAILABLE))
        self.assertTrue(is_retryable(grpc.StatusCode.RESOURCE_EXHAUSTED, "A_REASON_FROM_A_NEWER_BROKER"))
        self.assertFalse(is_retryable(grpc.StatusCode.INVALID_ARGUMENT))


if __name__ == "__main__":
    unittest.main()
