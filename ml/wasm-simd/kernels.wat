;; Strata's SIMD loops over tfjs's wasm heap. The module imports the wasm
;; backend's own memory, so pointers are the byte offsets of tensors there;
;; it has no memory, stack or data of its own. `ml/wasm-simd/build.sh`
;; assembles it (wat2wasm, from Debian's wabt) into kernels-wasm.ts, once
;; with a plain and once with a shared memory import (the threaded build).

(module
  (import "env" "memory" (memory 1 MEMORY_LIMITS))

  ;; Adam, as tf.train.adam, fused: m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
  ;; out = w - k1 m / (sqrt(k2 v) + eps), with the bias corrections folded
  ;; into k1 = lr / (1 - b1^t) and k2 = 1 / (1 - b2^t).
  (func (export "adam")
    (param $w i32) (param $g i32) (param $m i32) (param $v i32) (param $out i32) (param $n i32)
    (param $k1 f32) (param $k2 f32) (param $b1 f32) (param $b2 f32) (param $eps f32)
    (local $i i32) (local $end4 i32)
    (local $gv v128) (local $mv v128) (local $vv v128)
    (local $B1 v128) (local $B2 v128) (local $OB1 v128) (local $OB2 v128) (local $K1 v128) (local $K2 v128) (local $EPS v128)
    (local $gs f32) (local $ms f32) (local $vs f32)
    (local.set $B1 (f32x4.splat (local.get $b1)))
    (local.set $B2 (f32x4.splat (local.get $b2)))
    (local.set $OB1 (f32x4.splat (f32.sub (f32.const 1) (local.get $b1))))
    (local.set $OB2 (f32x4.splat (f32.sub (f32.const 1) (local.get $b2))))
    (local.set $K1 (f32x4.splat (local.get $k1)))
    (local.set $K2 (f32x4.splat (local.get $k2)))
    (local.set $EPS (f32x4.splat (local.get $eps)))
    (local.set $end4 (i32.and (local.get $n) (i32.const -4)))
    (block $done4
      (loop $loop4
        (br_if $done4 (i32.ge_u (local.get $i) (local.get $end4)))
        (local.set $gv (v128.load (i32.add (local.get $g) (i32.shl (local.get $i) (i32.const 2)))))
        (local.set $mv (f32x4.add
          (f32x4.mul (local.get $B1) (v128.load (i32.add (local.get $m) (i32.shl (local.get $i) (i32.const 2)))))
          (f32x4.mul (local.get $OB1) (local.get $gv))))
        (local.set $vv (f32x4.add
          (f32x4.mul (local.get $B2) (v128.load (i32.add (local.get $v) (i32.shl (local.get $i) (i32.const 2)))))
          (f32x4.mul (local.get $OB2) (f32x4.mul (local.get $gv) (local.get $gv)))))
        (v128.store (i32.add (local.get $m) (i32.shl (local.get $i) (i32.const 2))) (local.get $mv))
        (v128.store (i32.add (local.get $v) (i32.shl (local.get $i) (i32.const 2))) (local.get $vv))
        (v128.store (i32.add (local.get $out) (i32.shl (local.get $i) (i32.const 2)))
          (f32x4.sub
            (v128.load (i32.add (local.get $w) (i32.shl (local.get $i) (i32.const 2))))
            (f32x4.div
              (f32x4.mul (local.get $K1) (local.get $mv))
              (f32x4.add (f32x4.sqrt (f32x4.mul (local.get $vv) (local.get $K2))) (local.get $EPS)))))
        (local.set $i (i32.add (local.get $i) (i32.const 4)))
        (br $loop4)))
    (block $done
      (loop $loop
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (local.set $gs (f32.load (i32.add (local.get $g) (i32.shl (local.get $i) (i32.const 2)))))
        (local.set $ms (f32.add
          (f32.mul (local.get $b1) (f32.load (i32.add (local.get $m) (i32.shl (local.get $i) (i32.const 2)))))
          (f32.mul (f32.sub (f32.const 1) (local.get $b1)) (local.get $gs))))
        (local.set $vs (f32.add
          (f32.mul (local.get $b2) (f32.load (i32.add (local.get $v) (i32.shl (local.get $i) (i32.const 2)))))
          (f32.mul (f32.sub (f32.const 1) (local.get $b2)) (f32.mul (local.get $gs) (local.get $gs)))))
        (f32.store (i32.add (local.get $m) (i32.shl (local.get $i) (i32.const 2))) (local.get $ms))
        (f32.store (i32.add (local.get $v) (i32.shl (local.get $i) (i32.const 2))) (local.get $vs))
        (f32.store (i32.add (local.get $out) (i32.shl (local.get $i) (i32.const 2)))
          (f32.sub
            (f32.load (i32.add (local.get $w) (i32.shl (local.get $i) (i32.const 2))))
            (f32.div
              (f32.mul (local.get $k1) (local.get $ms))
              (f32.add (f32.sqrt (f32.mul (local.get $vs) (local.get $k2))) (local.get $eps)))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $loop))))

  ;; g[i] = 0 where y[i] <= 0: the ReLU's gradient, in place.
  (func (export "reluGrad") (param $g i32) (param $y i32) (param $n i32)
    (local $i i32) (local $end4 i32) (local $p i32)
    (local.set $end4 (i32.and (local.get $n) (i32.const -4)))
    (block $done4
      (loop $loop4
        (br_if $done4 (i32.ge_u (local.get $i) (local.get $end4)))
        (local.set $p (i32.shl (local.get $i) (i32.const 2)))
        (v128.store (i32.add (local.get $g) (local.get $p))
          (v128.and
            (v128.load (i32.add (local.get $g) (local.get $p)))
            (f32x4.gt (v128.load (i32.add (local.get $y) (local.get $p))) (v128.const f32x4 0 0 0 0))))
        (local.set $i (i32.add (local.get $i) (i32.const 4)))
        (br $loop4)))
    (block $done
      (loop $loop
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (local.set $p (i32.shl (local.get $i) (i32.const 2)))
        (if (i32.eqz (f32.gt (f32.load (i32.add (local.get $y) (local.get $p))) (f32.const 0)))
          (then (f32.store (i32.add (local.get $g) (local.get $p)) (f32.const 0))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $loop))))

  ;; The gradient of a 2x2, stride-2, 'valid' max pool over [N, H, W, C]
  ;; (C a multiple of 4), fused with the ReLU before it (when $relu: no
  ;; gradient where the window's maximum is 0) and that layer's bias
  ;; gradient (when $db != 0: per-channel sums, accumulated). Each output
  ;; gradient goes to the first maximal input of its window, as in tfjs.
  ;; $dx must be zero-filled by the caller (odd H or W leave rows unwritten).
  (func (export "maxPool2x2Grad")
    (param $x i32) (param $dy i32) (param $dx i32) (param $db i32)
    (param $n i32) (param $h i32) (param $w i32) (param $c i32) (param $relu i32)
    (local $oh i32) (local $ow i32) (local $b i32) (local $oy i32) (local $ox i32) (local $ch i32)
    (local $rowStride i32) (local $p00 i32) (local $gOff i32)
    (local $v0 v128) (local $v1 v128) (local $v2 v128) (local $v3 v128) (local $mx v128)
    (local $m0 v128) (local $m1 v128) (local $m2 v128) (local $m3 v128) (local $taken v128) (local $g v128)
    (local.set $oh (i32.shr_u (local.get $h) (i32.const 1)))
    (local.set $ow (i32.shr_u (local.get $w) (i32.const 1)))
    (local.set $rowStride (i32.shl (i32.mul (local.get $w) (local.get $c)) (i32.const 2)))
    (local.set $gOff (local.get $dy))
    (block $doneB (loop $loopB
      (br_if $doneB (i32.ge_u (local.get $b) (local.get $n)))
      (local.set $oy (i32.const 0))
      (block $doneY (loop $loopY
        (br_if $doneY (i32.ge_u (local.get $oy) (local.get $oh)))
        (local.set $ox (i32.const 0))
        (block $doneX (loop $loopX
          (br_if $doneX (i32.ge_u (local.get $ox) (local.get $ow)))
          ;; byte offset of window element (2 oy, 2 ox) of image b, channel 0
          (local.set $p00 (i32.shl
            (i32.mul
              (i32.add (i32.mul (i32.add (i32.mul (local.get $b) (local.get $h)) (i32.shl (local.get $oy) (i32.const 1))) (local.get $w))
                (i32.shl (local.get $ox) (i32.const 1)))
              (local.get $c))
            (i32.const 2)))
          (local.set $ch (i32.const 0))
          (block $doneC (loop $loopC
            (br_if $doneC (i32.ge_u (local.get $ch) (local.get $c)))
            (local.set $v0 (v128.load (i32.add (local.get $x) (local.get $p00))))
            (local.set $v1 (v128.load (i32.add (local.get $x) (i32.add (local.get $p00) (i32.shl (local.get $c) (i32.const 2))))))
            (local.set $v2 (v128.load (i32.add (local.get $x) (i32.add (local.get $p00) (local.get $rowStride)))))
            (local.set $v3 (v128.load (i32.add (local.get $x) (i32.add (i32.add (local.get $p00) (local.get $rowStride)) (i32.shl (local.get $c) (i32.const 2))))))
            (local.set $mx (f32x4.max (f32x4.max (local.get $v0) (local.get $v1)) (f32x4.max (local.get $v2) (local.get $v3))))
            (local.set $g (v128.load (local.get $gOff)))
            (if (local.get $relu)
              (then (local.set $g (v128.and (local.get $g) (f32x4.gt (local.get $mx) (v128.const f32x4 0 0 0 0))))))
            (local.set $m0 (f32x4.eq (local.get $v0) (local.get $mx)))
            (local.set $m1 (v128.andnot (f32x4.eq (local.get $v1) (local.get $mx)) (local.get $m0)))
            (local.set $taken (v128.or (local.get $m0) (local.get $m1)))
            (local.set $m2 (v128.andnot (f32x4.eq (local.get $v2) (local.get $mx)) (local.get $taken)))
            (local.set $taken (v128.or (local.get $taken) (local.get $m2)))
            (local.set $m3 (v128.not (local.get $taken)))
            (v128.store (i32.add (local.get $dx) (local.get $p00)) (v128.and (local.get $g) (local.get $m0)))
            (v128.store (i32.add (local.get $dx) (i32.add (local.get $p00) (i32.shl (local.get $c) (i32.const 2)))) (v128.and (local.get $g) (local.get $m1)))
            (v128.store (i32.add (local.get $dx) (i32.add (local.get $p00) (local.get $rowStride))) (v128.and (local.get $g) (local.get $m2)))
            (v128.store (i32.add (local.get $dx) (i32.add (i32.add (local.get $p00) (local.get $rowStride)) (i32.shl (local.get $c) (i32.const 2)))) (v128.and (local.get $g) (local.get $m3)))
            (if (local.get $db)
              (then (v128.store (i32.add (local.get $db) (i32.shl (local.get $ch) (i32.const 2)))
                (f32x4.add (v128.load (i32.add (local.get $db) (i32.shl (local.get $ch) (i32.const 2)))) (local.get $g)))))
            (local.set $p00 (i32.add (local.get $p00) (i32.const 16)))
            (local.set $gOff (i32.add (local.get $gOff) (i32.const 16)))
            (local.set $ch (i32.add (local.get $ch) (i32.const 4)))
            (br $loopC)))
          (local.set $ox (i32.add (local.get $ox) (i32.const 1)))
          (br $loopX)))
        (local.set $oy (i32.add (local.get $oy) (i32.const 1)))
        (br $loopY)))
      (local.set $b (i32.add (local.get $b) (i32.const 1)))
      (br $loopB))))
)
