"""The queue's group commit (node/queue/queue_sync.h): many sessions'
messages made durable together off the event loop, each session answered
250 only once its batch is. Concurrent clients all get their 250 and every
message is delivered once; a node SIGKILLed while 30 clients send loses
none of the messages it acknowledged. The rest of the queue is
test_queue.py."""
import smtplib
import sys
import threading
import unittest

from lbdtest import wait_for
from queuetest import BODY, QueueTestCase


def message_id(data):
    """The tag a test message carries: its Message-ID's local part."""
    return data.split(b"Message-ID: <")[1].split(b"@")[0]


class GroupCommitTest(QueueTestCase):
    def relay_node(self, extra=""):
        return self.outbound_node(extra="relay_networks = 127.0.0.0/8\n" + extra)

    def send(self, port, tag):
        """One message through the MX listener (relay_networks): True when
        the node answered 250 to its data."""
        c = smtplib.SMTP("127.0.0.1", port, timeout=20)
        try:
            c.ehlo("app.example.test")
            c.sendmail("app@example.test", ["carol@remote.test"],
                       b"Message-ID: <%s@example.test>\r\n" % tag.encode() + BODY)
            return True
        except smtplib.SMTPResponseException:
            return False
        finally:
            try:
                c.quit()
            except (smtplib.SMTPException, OSError):
                pass

    def delivered_ids(self):
        return [message_id(d[2]) for d in list(self.mx.delivered)]

    def test_concurrent_submissions_all_acknowledged_and_delivered_once(self):
        n = self.relay_node()
        clients, per = 50, 2
        results = {}

        def client(k):
            for i in range(per):
                tag = "c%d-%d" % (k, i)
                results[tag] = self.send(n.ports["smtp"], tag)
        threads = [threading.Thread(target=client, args=(k,))
                   for k in range(clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        self.assertEqual(len(results), clients * per)
        self.assertTrue(all(results.values()),
                        [t for t, ok in results.items() if not ok])
        wait_for(lambda: len(self.mx.delivered) >= clients * per, 60,
                 what="%d deliveries" % (clients * per))
        wait_for(lambda: not self.queued(), 10, what="queue emptied")
        ids = self.delivered_ids()
        self.assertEqual(sorted(ids),
                         sorted(t.encode() for t in results))  # each once
        # every 250 names a queue ID, logged as queued
        self.assertEqual(n.log().count(" queued queue_id="), clients * per)

    def test_sigkill_while_sending_loses_no_acknowledged_message(self):
        n = self.relay_node("queue_lease_s = 2\n")
        acked, lock, stop = set(), threading.Lock(), threading.Event()
        sent = [0]

        def client(k):
            i = 0
            while not stop.is_set():
                tag = "k%d-%d" % (k, i)
                i += 1
                try:
                    ok = self.send(n.ports["smtp"], tag)
                except (smtplib.SMTPException, OSError):
                    ok = False  # the node died mid-session: not acknowledged
                with lock:
                    sent[0] += 1
                    if ok:
                        acked.add(tag.encode())
                if not ok and n.proc.poll() is not None:
                    return
        threads = [threading.Thread(target=client, args=(k,))
                   for k in range(30)]
        for t in threads:
            t.start()
        wait_for(lambda: len(acked) >= 100, 30, what="100 acknowledged")
        n.kill()  # SIGKILL, with 30 sessions in every state
        stop.set()
        for t in threads:
            t.join(30)
        with lock:
            acknowledged = set(acked)
        n.start()
        wait_for(lambda: acknowledged <= set(self.delivered_ids()), 30,
                 what="every acknowledged message delivered")
        arrived = set(self.delivered_ids())
        sys.stderr.write("\n%d sent, %d acknowledged before the SIGKILL, %d "
                         "arrived (%d unacknowledged ones too)\n"
                         % (sent[0], len(acknowledged), len(arrived),
                            len(arrived - acknowledged)))
        self.assertTrue(acknowledged <= arrived)
        wait_for(lambda: not self.queued(), 10, what="queue emptied")


if __name__ == "__main__":
    unittest.main()
