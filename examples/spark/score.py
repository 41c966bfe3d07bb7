"""`edgeclf spark-predict` as a spark-submit application (YARN, Kubernetes, standalone).

    spark-submit --master yarn --deploy-mode cluster \
        --archives edgeclf-venv.tar.gz#environment \
        --conf spark.pyspark.python=./environment/bin/python \
        examples/spark/score.py hdfs:///posts/2026-11-27/ -o hdfs:///scored/2026-11-27/ --model albert-zh-rumor

The arguments are those of `edgeclf spark-predict --help`; the master comes
from spark-submit. See docs/scale-out.md.
"""

import sys

from edgeclf.integrations.spark_cli import main

if __name__ == "__main__":
    sys.exit(main())
