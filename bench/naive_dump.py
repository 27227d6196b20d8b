"""The baseline bench/dump measures `hcctl backup dump` against: the dump a hand-written
pymongo script makes (as the hospital's migration script loads): every collection read into one
list, then written out as gzip-compressed BSON. Do not optimise it; the point is its memory.

Usage: HCCTL_MONGODB_URI=mongodb://... python naive_dump.py DB OUT_DIR
"""

import gzip
import os
import sys

import bson
from pymongo import MongoClient

db = MongoClient(os.environ["HCCTL_MONGODB_URI"])[sys.argv[1]]
out = sys.argv[2]
os.makedirs(out, mode=0o700, exist_ok=True)
total = 0
for name in db.list_collection_names():
    docs = list(db[name].find())  # the whole collection in memory
    with gzip.open(os.path.join(out, name + ".bson.gz"), "wb", compresslevel=3) as f:
        for d in docs:
            f.write(bson.encode(d))
    total += len(docs)
print(f"dumped {total} documents of {sys.argv[1]} into {out}")
