"""The hospital's original CSV -> MongoDB migration script, kept as the baseline
that `hcctl migrate` is benchmarked against (see bench/README.md).

It is deliberately the plain, naive script: the whole file is read into one
DataFrame, cleaned in memory, turned into a list of dicts, and sent with a single
insert_many. Do not optimise it; the point is to measure what it costs.

Usage: HCCTL_MONGODB_URI=mongodb://... python old_migrate.py PATH --db DB --collection COLL
"""

import argparse
import os

import pandas as pd
from pymongo import MongoClient

parser = argparse.ArgumentParser(description="Load the healthcare CSV into MongoDB")
parser.add_argument("path")
parser.add_argument("--db", required=True)
parser.add_argument("--collection", required=True)
args = parser.parse_args()

client = MongoClient(os.environ["HCCTL_MONGODB_URI"])
collection = client[args.db][args.collection]

df = pd.read_csv(args.path)
df = df.drop_duplicates()

# Clean up
df["Name"] = df["Name"].str.title()
df.loc[df["Billing Amount"] < 0, "Billing Amount"] = None
df["Date of Admission"] = pd.to_datetime(df["Date of Admission"])
df["Discharge Date"] = pd.to_datetime(df["Discharge Date"])

# MongoDB can't store NaN as null, so swap missing values for None
df = df.astype(object).where(pd.notnull(df), None)

collection.insert_many(df.to_dict("records"))
print(f"Inserted {len(df)} records into {args.db}.{args.collection}")
