"""Target profiles, roofline floors and tegrastats parsing, against hand computation."""

from __future__ import annotations

import pytest

from edgesr.benchmarks.onnx_cost import ModelCost
from edgesr.benchmarks.roofline import dominant_ops, load_targets, roofline_floor, target
from edgesr.benchmarks.tegrastats import energy_per_frame_mj, parse_tegrastats_line
from edgesr.errors import UnknownNameError

REQUIRED = ("jetson-orin-nano", "jetson-orin-nx", "jetson-agx-orin", "raspberry-pi-5", "snapdragon-8-gen-3",
            "apple-m2", "rtx-4090", "l4", "h100", "ultra7-155h-npu", "ultra7-155h-igpu",
            "ultra7-258v-npu", "ultra7-258v-igpu")

# Intel ARK, per SKU: NPU / GPU Peak TOPS (Int8) and the fastest memory it takes (MT/s), on
# 2 channels of 64 bits.
INTEL_ARK = {"ultra7-155h": {"npu": 11, "igpu": 18, "mts": 7467},
             "ultra7-258v": {"npu": 47, "igpu": 64, "mts": 8533}}

# Recorded on a Jetson AGX Orin 32GB (JetPack 6, L4T 36) and published in Georgia Tech CRNCH's
# Rogues Gallery documentation ("Rudi - Jetson Dev Boards", rudi2); rails are printed as
# NAME current_mW/average_mW, the format of NVIDIA's Jetson Linux Developer Guide, "tegrastats Utility".
AGX_ORIN_LINE = (
    "09-01-2025 10:55:25 RAM 1313/30697MB (lfb 37x4MB) SWAP 0/15348MB (cached 0MB) "
    "CPU [0%@729,0%@729,0%@729,0%@729,0%@729,0%@729,0%@729,0%@729,off,off,off,off] GR3D_FREQ 0% "
    "cpu@43.343C soc2@39.812C soc0@40.312C tj@43.343C soc1@38.843C VDD_GPU_SOC 1995mW/1995mW "
    "VDD_CPU_CV 0mW/0mW VIN_SYS_5V0 2524mW/2524mW"
)
# Newer releases add the maximum (current/average/max); recorded on L4T r39, AGX Orin.
R39_LINE = ("09-15-2026 12:19:33 RAM 999/62841MB CPU [0%@729,off] GR3D_FREQ 0% cpu@43.093C/43.093C "
            "VDD_GPU_SOC 2792mW/2792mW/2792mW VDD_CPU_CV 0mW/0mW/0mW VIN_SYS_5V0 3918mW/3952mW/4019mW")


def test_every_required_target_has_figures_and_a_source() -> None:
    targets = load_targets()
    for key in REQUIRED:
        t = targets[key]
        assert t.memory_bandwidth_gbs > 0 and t.sources and all("http" in s for s in t.sources)
    assert targets["jetson-orin-nx"].memory_bandwidth_gbs == 102.4  # datasheet DS-10712-001
    with pytest.raises(UnknownNameError, match="Did you mean 'jetson-orin-nx'"):
        target("jetson-orin-mx")


def test_intel_targets_are_the_ark_figures() -> None:
    targets = load_targets()
    for sku, ark in INTEL_ARK.items():
        for engine, device in (("npu", "npu"), ("igpu", "gpu")):
            t = targets[f"{sku}-{engine}"]
            assert t.device == device
            assert t.peak_tflops == {"fp32": None, "fp16": None, "int8": ark[engine]}  # Intel publishes no FLOPS
            # MT/s x 128 bits / 8 = bytes per second: 7467 -> 119.47 GB/s, 8533 -> 136.53 GB/s
            assert t.memory_bandwidth_gbs == pytest.approx(ark["mts"] * 1e6 * 128 / 8 / 1e9, abs=0.005)
            assert any("intel.com" in s for s in t.sources)


def test_target_keys_and_devices_fit_predict() -> None:
    for key, t in load_targets().items():
        assert len(key) <= 20, key  # predict prints keys in a 20-character column
        assert t.device in ("cpu", "gpu", "npu"), key


def test_floor_by_hand() -> None:
    cost = ModelCost(height=1, width=1, multi_adds=10**9, bytes_fp32=10**8, bytes_fp16=5 * 10**7,
                     by_op={"Conv": {"multi_adds": 10**9, "bytes_fp32": 10**8, "bytes_fp16": 5 * 10**7, "nodes": 1}})
    nx = target("jetson-orin-nx")  # 1.88 TFLOPS fp32, 102.4 GB/s
    floor = roofline_floor(cost, nx, precision="fp32")
    assert floor.compute_s == pytest.approx(2e9 / 1.88e12)  # 1.0638 ms
    assert floor.memory_s == pytest.approx(1e8 / 102.4e9)  # 0.9766 ms
    assert floor.bound == "compute" and floor.fps_bound == pytest.approx(940.0)
    snapdragon = roofline_floor(cost, target("snapdragon-8-gen-3"), precision="fp16")
    assert snapdragon.compute_s is None and snapdragon.floor_s == pytest.approx(5e7 / 76.8e9)
    assert dominant_ops(cost, bound="compute", precision="fp32") == [("Conv", 1.0)]
    npu = roofline_floor(cost, target("ultra7-258v-npu"), precision="fp16")  # no FP16 rate: memory only
    assert npu.compute_s is None and npu.floor_s == pytest.approx(5e7 / 136.53e9)  # 0.3662 ms


def test_tegrastats_lines_parse_to_rails() -> None:
    sample = parse_tegrastats_line(AGX_ORIN_LINE)
    assert sample.rails_mw == {"VDD_GPU_SOC": 1995, "VDD_CPU_CV": 0, "VIN_SYS_5V0": 2524}
    assert sample.total_mw == 1995 + 0 + 2524 and sample.gpu_load_pct == 0  # no VDD_IN: rail sum
    assert parse_tegrastats_line(R39_LINE).rails_mw["VIN_SYS_5V0"] == 3918  # the current figure
    assert parse_tegrastats_line("RAM 999/62841MB CPU [0%@729,off] cpu@43.093C") is None
    # 4519 mW for 20 ms = 90.38 mJ
    assert energy_per_frame_mj(4519.0, 20.0) == pytest.approx(90.38)
    assert energy_per_frame_mj(None, 20.0) is None
