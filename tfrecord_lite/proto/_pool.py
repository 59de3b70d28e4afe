"""The private descriptor pool that holds this package's copy of the Example protos.

TensorFlow registers ``tensorflow.Example`` and friends in protobuf's default pool;
registering them there a second time fails with "duplicate symbol". Keeping ours in
a pool of their own lets both live in one process, in either import order.
"""

from google.protobuf import descriptor_pool

POOL = descriptor_pool.DescriptorPool()
