"""A plain Python `websockets` client that reads the lobby as the original
demo's clients do (seed `message` notifies) and checks it gets every one,
in order. Prints `ready` once connected and `received N` at the end.

    python3 reader.py ws://HOST:PORT/socket COUNT
"""
import asyncio
import sys

import websockets


async def main(url: str, count: int) -> int:
    async with websockets.connect(
        url, subprotocols=["websocket.io-rpc-v0.1"], max_size=None
    ) as ws:
        # A first frame (Notify "ping"), as any client sends something.
        await ws.send(bytes([1, 4]) + b"ping" + b"r")
        print("ready", flush=True)
        expect = 0
        while expect < count:
            frame = await asyncio.wait_for(ws.recv(), 60)
            if not isinstance(frame, bytes) or len(frame) < 2 or frame[0] != 1:
                continue
            name_len = frame[1]
            if frame[2 : 2 + name_len] != b"message":
                continue
            seq = int(frame[2 + name_len :].split(b" ", 1)[0])
            if seq != expect:
                print(f"out of order: got {seq}, expected {expect}", flush=True)
                return 1
            expect += 1
        print(f"received {expect}", flush=True)
        return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1], int(sys.argv[2]))))
