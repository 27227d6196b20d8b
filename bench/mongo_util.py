"""Small helpers bench/run calls with the bench venv's Python.

  mongo_util.py ping                       print the server's version
  mongo_util.py drop DB COLL [COLL...]     drop collections (missing ones are fine)
  mongo_util.py dropdb DB [DB...]          drop databases (missing ones are fine)
  mongo_util.py count DB COLL              print the number of documents in COLL
  mongo_util.py report FILE KEY [KEY...]   print KEYs of an hcctl JSON report, space-separated
  mongo_util.py index DB COLL              create the 5 query indexes hcctl creates; print seconds

The server is taken from HCCTL_MONGODB_URI, like hcctl and old_migrate.py.
"""

import json
import os
import sys


def client():
    from pymongo import MongoClient

    return MongoClient(os.environ["HCCTL_MONGODB_URI"], serverSelectionTimeoutMS=10000)


def main(argv):
    if not argv:
        sys.exit(__doc__)
    cmd, rest = argv[0], argv[1:]
    if cmd == "ping":
        print(client().server_info().get("version", "unknown"))
    elif cmd == "drop" and len(rest) >= 2:
        db = client()[rest[0]]
        for name in rest[1:]:
            db.drop_collection(name)
    elif cmd == "dropdb" and rest:
        c = client()
        for name in rest:
            c.drop_database(name)
    elif cmd == "count" and len(rest) == 2:
        print(client()[rest[0]][rest[1]].count_documents({}))
    elif cmd == "report" and len(rest) >= 2:
        with open(rest[0], encoding="utf-8") as f:
            report = json.load(f)
        print(" ".join(str(report.get(key, "?")) for key in rest[1:]))
    elif cmd == "index" and len(rest) == 2:
        import time

        coll = client()[rest[0]][rest[1]]
        fields = ["Name", "Medical Condition", "Date of Admission", "Hospital", "Doctor"]
        started = time.monotonic()
        # One createIndexes command, as hcctl sends it.
        from pymongo import IndexModel

        coll.create_indexes([IndexModel([(f, 1)], name=f.lower().replace(" ", "_")) for f in fields])
        print(f"{time.monotonic() - started:.3f}")
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
