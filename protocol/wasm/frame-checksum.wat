;; The frame checksum's bulk loop (frame-checksum.ts defines the checksum and
;; has the same loop in JavaScript). 16 lanes of 32 bits in four v128
;; accumulators, each lane the xxHash32 round over every 16th little-endian
;; word of the payload: lane = rotl(lane + word * P2, 13) * P1. Four
;; independent accumulators hide the multiply's latency.
;; `common/embed-wat.sh protocol/wasm/frame-checksum.wat FRAME_CHECKSUM_WASM`
;; assembles it (wat2wasm, from Debian's wabt) into frame-checksum-wasm.ts.

(module
  (memory (export "memory") 1)

  ;; lanes(p, n, state): runs the n bytes (a multiple of 64) at p through the
  ;; 16 lanes held at state (64 bytes: lanes 0-3, 4-7, 8-11, 12-15), in place.
  (func (export "lanes") (param $p i32) (param $n i32) (param $state i32)
    (local $end i32) (local $a v128) (local $b v128) (local $c v128) (local $d v128)
    (local $P1 v128) (local $P2 v128) (local $t v128)
    (local.set $P1 (i32x4.splat (i32.const 0x9E3779B1)))
    (local.set $P2 (i32x4.splat (i32.const 0x85EBCA77)))
    (local.set $a (v128.load offset=0 (local.get $state)))
    (local.set $b (v128.load offset=16 (local.get $state)))
    (local.set $c (v128.load offset=32 (local.get $state)))
    (local.set $d (v128.load offset=48 (local.get $state)))
    (local.set $end (i32.add (local.get $p) (local.get $n)))
    (block $done
      (loop $loop
        (br_if $done (i32.ge_u (local.get $p) (local.get $end)))
        (local.set $t (i32x4.add (local.get $a) (i32x4.mul (v128.load offset=0 (local.get $p)) (local.get $P2))))
        (local.set $a (i32x4.mul (v128.or (i32x4.shl (local.get $t) (i32.const 13)) (i32x4.shr_u (local.get $t) (i32.const 19))) (local.get $P1)))
        (local.set $t (i32x4.add (local.get $b) (i32x4.mul (v128.load offset=16 (local.get $p)) (local.get $P2))))
        (local.set $b (i32x4.mul (v128.or (i32x4.shl (local.get $t) (i32.const 13)) (i32x4.shr_u (local.get $t) (i32.const 19))) (local.get $P1)))
        (local.set $t (i32x4.add (local.get $c) (i32x4.mul (v128.load offset=32 (local.get $p)) (local.get $P2))))
        (local.set $c (i32x4.mul (v128.or (i32x4.shl (local.get $t) (i32.const 13)) (i32x4.shr_u (local.get $t) (i32.const 19))) (local.get $P1)))
        (local.set $t (i32x4.add (local.get $d) (i32x4.mul (v128.load offset=48 (local.get $p)) (local.get $P2))))
        (local.set $d (i32x4.mul (v128.or (i32x4.shl (local.get $t) (i32.const 13)) (i32x4.shr_u (local.get $t) (i32.const 19))) (local.get $P1)))
        (local.set $p (i32.add (local.get $p) (i32.const 64)))
        (br $loop)))
    (v128.store offset=0 (local.get $state) (local.get $a))
    (v128.store offset=16 (local.get $state) (local.get $b))
    (v128.store offset=32 (local.get $state) (local.get $c))
    (v128.store offset=48 (local.get $state) (local.get $d)))
)
