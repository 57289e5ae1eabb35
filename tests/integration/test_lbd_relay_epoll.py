"""test_lbd_relay's tests again with io_engine = epoll: lbd's default is
uring, and epoll is what it falls back to where io_uring is missing or
not allowed, so both stay tested."""
import unittest

import test_lbd_relay


class RelayEpollTest(test_lbd_relay.RelayTest):
    IO_ENGINE = "epoll"


if __name__ == "__main__":
    unittest.main()
