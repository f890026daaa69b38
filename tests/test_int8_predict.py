"""edgesr-bench predict at int8: the targets' published INT8 rates and one byte per float
element, against hand computation (no torch, no model run)."""

from __future__ import annotations

import pytest

from edgesr.benchmarks.onnx_cost import ModelCost
from edgesr.benchmarks.roofline import bytes_moved, dominant_ops, roofline_floor, target
from edgesr.errors import UnknownNameError

# 2.5e7 float elements and 1,000 bytes of int64 shape tensors moved by Conv; 1,000 float
# elements and 80 int bytes by Mul: fp32 = 4 F + I, fp16 = 2 F + I
CONV = {"multi_adds": 10**9, "bytes_fp32": 4 * 25_000_000 + 1_000, "bytes_fp16": 2 * 25_000_000 + 1_000, "nodes": 1}
MUL = {"multi_adds": 0, "bytes_fp32": 4 * 1_000 + 80, "bytes_fp16": 2 * 1_000 + 80, "nodes": 1}
COST = ModelCost(height=1, width=1, multi_adds=10**9, bytes_fp32=CONV["bytes_fp32"] + MUL["bytes_fp32"],
                 bytes_fp16=CONV["bytes_fp16"] + MUL["bytes_fp16"], by_op={"Conv": CONV, "Mul": MUL})


def test_int8_bytes_are_one_per_float_element_plus_the_integer_bytes() -> None:
    assert bytes_moved(COST.bytes_fp32, COST.bytes_fp16, "int8") == 25_001_000 + 1_080
    assert bytes_moved(COST.bytes_fp32, COST.bytes_fp16, "fp16") == COST.bytes_fp16
    with pytest.raises(UnknownNameError):
        bytes_moved(1, 1, "int4")


def test_int8_floor_by_hand_on_a_target_that_publishes_int8() -> None:
    nx = target("jetson-orin-nx")  # GPU Tensor Cores: 30.08 dense INT8 TOPS, 102.4 GB/s
    floor = roofline_floor(COST, nx, precision="int8")
    assert floor.compute_s == pytest.approx(2e9 / 30.08e12)  # 0.0665 ms
    assert floor.memory_s == pytest.approx(25_002_080 / 102.4e9)  # 0.2442 ms
    assert floor.bound == "memory"
    assert roofline_floor(COST, nx, precision="fp32").memory_s == pytest.approx(COST.bytes_fp32 / 102.4e9)
    shares = dominant_ops(COST, bound="memory", precision="int8")
    assert shares[0] == ("Conv", pytest.approx(25_001_000 / 25_002_080))


def test_a_target_without_a_published_int8_rate_has_no_compute_term() -> None:
    snapdragon = target("snapdragon-8-gen-3")  # Qualcomm publishes no TOPS figure: memory only
    floor = roofline_floor(COST, snapdragon, precision="int8")
    assert floor.compute_s is None and floor.floor_s == pytest.approx(25_002_080 / 76.8e9)


def test_int8_floors_by_hand_on_the_intel_engines() -> None:
    igpu = roofline_floor(COST, target("ultra7-258v-igpu"), precision="int8")  # ARK: 64 TOPS, 136.53 GB/s
    assert igpu.compute_s == pytest.approx(2e9 / 64e12)  # 0.03125 ms
    assert igpu.memory_s == pytest.approx(25_002_080 / 136.53e9) and igpu.bound == "memory"  # 0.1831 ms
    npu = roofline_floor(COST, target("ultra7-155h-npu"), precision="int8")  # ARK: 11 TOPS, 119.47 GB/s
    assert npu.compute_s == pytest.approx(2e9 / 11e12)  # 0.1818 ms
    assert npu.memory_s == pytest.approx(25_002_080 / 119.47e9)  # 0.2093 ms: still memory-bound
    assert npu.bound == "memory" and npu.fps_bound == pytest.approx(119.47e9 / 25_002_080)
