"""Stand-ins for TensorRT and cuda-python that keep "device memory" in a dict, for checking
TrtEngine's build/run plumbing (network flags, profile, timing cache, engine cache, padding,
chunking, cropping, buffers, close) on a machine without either. The fake engine upsamples by
nearest neighbour. The real thing is covered by the `tensorrt` tests of test_trt_gpu.py."""

from __future__ import annotations

import types

import numpy as np


class FakeCuda:
    def __init__(self) -> None:
        import ctypes

        self.ctypes = ctypes
        self.memory: dict[int, bytearray] = {}
        self.next_addr = 0x1000
        self.freed: list[int] = []
        self.streams_destroyed = 0

        class Kind:
            cudaMemcpyHostToDevice = 1
            cudaMemcpyDeviceToHost = 2

        self.cudaMemcpyKind = Kind

    def cudaGetErrorString(self, err: int) -> tuple[int, bytes]:
        return 0, b"fake error"

    def cudaGetDeviceCount(self) -> tuple[int, int]:
        return 0, 1

    def cudaGetDeviceProperties(self, index: int) -> tuple[int, object]:
        return 0, types.SimpleNamespace(name=b"Fake GPU\x00", major=8, minor=7, totalGlobalMem=8 << 30)

    def cudaDriverGetVersion(self) -> tuple[int, int]:
        return 0, 12020

    def cudaMalloc(self, nbytes: int) -> tuple[int, int]:
        addr = self.next_addr
        self.next_addr += nbytes + 256
        self.memory[addr] = bytearray(nbytes)
        return 0, addr

    def cudaFree(self, addr: int) -> tuple[int]:
        del self.memory[addr]
        self.freed.append(addr)
        return (0,)

    def cudaStreamCreate(self) -> tuple[int, int]:
        return 0, 77

    def cudaStreamSynchronize(self, stream: object) -> tuple[int]:
        return (0,)

    def cudaStreamDestroy(self, stream: object) -> tuple[int]:
        self.streams_destroyed += 1
        return (0,)

    def cudaMemcpyAsync(self, dst: int, src: int, count: int, kind: int, stream: object) -> tuple[int]:
        if kind == 1:
            self.memory[dst][:count] = self.ctypes.string_at(src, count)
        else:
            self.ctypes.memmove(dst, bytes(self.memory[src][:count]), count)
        return (0,)


def fake_tensorrt(cuda: FakeCuda, log: dict[str, object]) -> types.ModuleType:
    trt = types.ModuleType("tensorrt")
    trt.__version__ = "10.99.0.1"  # type: ignore[attr-defined]

    class Severity:
        INTERNAL_ERROR, ERROR, WARNING, INFO, VERBOSE = range(5)

    class ILogger:
        pass

    ILogger.Severity = Severity  # type: ignore[attr-defined]
    trt.ILogger = ILogger  # type: ignore[attr-defined]
    trt.NetworkDefinitionCreationFlag = types.SimpleNamespace(STRONGLY_TYPED=1)  # type: ignore[attr-defined]
    trt.OnnxParserFlag = types.SimpleNamespace()  # type: ignore[attr-defined]
    trt.MemoryPoolType = types.SimpleNamespace(WORKSPACE="workspace")  # type: ignore[attr-defined]
    trt.TensorIOMode = types.SimpleNamespace(INPUT="in", OUTPUT="out")  # type: ignore[attr-defined]
    trt.Dims = lambda dims: tuple(dims)  # type: ignore[attr-defined]
    trt.nptype = lambda dtype: np.float32  # type: ignore[attr-defined]

    class Network:
        num_inputs = num_outputs = 1

        def get_input(self, index: int) -> object:
            return types.SimpleNamespace(name="lr")

    class TimingCache:
        def serialize(self) -> bytes:
            return b"timings"

    class Config:
        def set_memory_pool_limit(self, pool: str, size: int) -> None:
            log["workspace"] = size

        def add_optimization_profile(self, profile: object) -> None:
            log["profile"] = profile

        def create_timing_cache(self, data: bytes) -> TimingCache:
            log["timing_in"] = bytes(data)
            return TimingCache()

        def set_timing_cache(self, cache: object, ignore_mismatch: bool) -> bool:
            return True

        def get_timing_cache(self) -> TimingCache:
            return TimingCache()

    class Profile:
        def set_shape(self, name: str, lo: tuple[int, ...], opt: tuple[int, ...], hi: tuple[int, ...]) -> None:
            log["shapes"] = (name, lo, opt, hi)

    class Builder:
        def __init__(self, logger: object) -> None:
            pass

        def create_network(self, flags: int) -> Network:
            log["flags"] = flags
            return Network()

        def create_builder_config(self) -> Config:
            return Config()

        def create_optimization_profile(self) -> Profile:
            return Profile()

        def build_serialized_network(self, network: object, config: object) -> bytes:
            log["builds"] = int(log.get("builds", 0)) + 1  # type: ignore[call-overload]
            shapes = log["shapes"]
            return b"FAKE-ENGINE:" + repr(shapes).encode()

    class OnnxParser:
        num_errors = 0

        def __init__(self, network: object, logger: object) -> None:
            pass

        def set_flag(self, flag: object) -> None:
            pass

        def parse(self, model: bytes, path: str) -> bool:
            log["parsed"] = path
            return True

    class Context:
        def __init__(self, engine: "Engine") -> None:
            self.engine = engine
            self.shape: tuple[int, ...] = ()
            self.addr: dict[str, int] = {}

        def set_input_shape(self, name: str, shape: tuple[int, ...]) -> bool:
            self.shape = tuple(shape)
            return True

        def get_tensor_shape(self, name: str) -> tuple[int, ...]:
            n, c, h, w = self.shape
            return (n, c, 2 * h, 2 * w)

        def set_tensor_address(self, name: str, addr: int) -> bool:
            self.addr[name] = addr
            return True

        def execute_async_v3(self, stream: int) -> bool:
            log.setdefault("runs", []).append(self.shape)  # type: ignore[union-attr]
            n, c, h, w = self.shape
            count = n * c * h * w
            x = np.frombuffer(bytes(cuda.memory[self.addr["lr"]][: count * 4]), dtype=np.float32).reshape(self.shape)
            y = np.ascontiguousarray(x.repeat(2, axis=2).repeat(2, axis=3))
            cuda.memory[self.addr["sr"]][: y.nbytes] = y.tobytes()
            return True

    class Engine:
        num_io_tensors = 2

        def __init__(self, data: bytes) -> None:
            self.data = data

        def get_tensor_name(self, index: int) -> str:
            return ("lr", "sr")[index]

        def get_tensor_mode(self, name: str) -> str:
            return "in" if name == "lr" else "out"

        def get_tensor_dtype(self, name: str) -> str:
            return "float"

        def get_tensor_profile_shape(self, name: str, index: int) -> tuple[tuple[int, ...], ...]:
            _, lo, opt, hi = log["shapes"]  # type: ignore[misc]
            return lo, opt, hi

        def create_execution_context(self) -> Context:
            return Context(self)

    class Runtime:
        def __init__(self, logger: object) -> None:
            pass

        def deserialize_cuda_engine(self, data: bytes) -> Engine | None:
            return Engine(data) if bytes(data).startswith(b"FAKE-ENGINE") else None

    trt.Builder = Builder  # type: ignore[attr-defined]
    trt.OnnxParser = OnnxParser  # type: ignore[attr-defined]
    trt.Runtime = Runtime  # type: ignore[attr-defined]
    return trt
