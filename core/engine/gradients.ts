/**
 * tfjs-core's Node build (dist/tf-core.node.js) registers no gradients: upstream registers them
 * from dist/register_all_gradients.js, an ES module graph with extensionless imports that Node
 * cannot load. The @tensorflow/tfjs bundle carries them for Node, so importing it gives us
 * upstream's maintained gradients for every kernel (the GPU image's tfjs-node depends on it too).
 * Importing it also registers the cpu backend, which we use anyway.
 */
import '@tensorflow/tfjs';
