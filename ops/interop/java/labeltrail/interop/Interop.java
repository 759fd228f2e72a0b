package labeltrail.interop;

import java.io.BufferedReader;
import java.io.ByteArrayOutputStream;
import java.io.File;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.TreeMap;
import java.util.stream.Collectors;

import org.apache.avro.Schema;
import org.apache.avro.SchemaNormalization;
import org.apache.avro.generic.GenericData;
import org.apache.avro.generic.GenericDatumReader;
import org.apache.avro.generic.GenericDatumWriter;
import org.apache.avro.generic.GenericRecord;
import org.apache.avro.io.DecoderFactory;
import org.apache.avro.io.EncoderFactory;
import org.apache.avro.io.JsonEncoder;
import org.apache.avro.message.BinaryMessageDecoder;
import org.apache.avro.message.BinaryMessageEncoder;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;

/**
 * A foreign client of labeltrail's topics, written only against Apache Avro's reference Java
 * implementation and the Apache Kafka Java client: what a producer or an annotation frontend
 * in another language does. It knows nothing of labeltrail but the contracts in schemas/avro.
 *
 * <p>Records cross the process boundary in Avro's JSON encoding, one per line, so neither side
 * needs the other's object model. Commands (stdin and stdout are UTF-8 lines):
 *
 * <pre>
 * fingerprint SCHEMA_DIR             each contract: "Name\tVERSION\tparsingFingerprint64 (hex)"
 * encode SCHEMA_DIR                  "Name\tjson" in, single-object bytes (hex) out
 * decode SCHEMA_DIR                  hex in, "Name\tjson\thex of Java's own re-encoding" out
 * produce BOOTSTRAP TOPIC SCHEMA_DIR "key\tName\tjson" in, "partition\toffset" out
 * produce-raw BOOTSTRAP TOPIC       "key\thex" in (any bytes), "partition\toffset" out
 * consume BOOTSTRAP TOPIC SCHEMA_DIR COUNT TIMEOUT_MS
 *                                    "partition\toffset\tkey\tName\tjson" out, COUNT records
 * </pre>
 */
public final class Interop {
  private Interop() {}

  /** The committed contracts: current ones by name, and every version by fingerprint. */
  static final class Contracts {
    final Map<String, Schema> current = new TreeMap<>();
    final Map<Long, Schema> writers = new TreeMap<>();
    final Map<String, BinaryMessageEncoder<GenericRecord>> encoders = new TreeMap<>();
    final Map<String, BinaryMessageDecoder<GenericRecord>> decoders = new TreeMap<>();
    final List<String> lines = new ArrayList<>();

    Contracts(File dir) throws IOException {
      File[] files = dir.listFiles((d, n) -> n.endsWith(".avsc"));
      File[] history = new File(dir, "history").listFiles((d, n) -> n.endsWith(".avsc"));
      for (File f : files) {
        Schema s = new Schema.Parser().parse(f);
        current.put(s.getName(), s);
        encoders.put(s.getName(), new BinaryMessageEncoder<>(GenericData.get(), s));
        decoders.put(s.getName(), new BinaryMessageDecoder<>(GenericData.get(), s));
      }
      Map<String, Integer> versions = new TreeMap<>();
      if (history != null) {
        for (File f : history) {
          Schema s = new Schema.Parser().parse(f);
          String version = f.getName().replaceAll(".*\\.v(\\d+)\\.avsc$", "$1");
          versions.merge(s.getName(), Integer.parseInt(version), Math::max);
          decoders.get(s.getName()).addSchema(s); // an older writer, resolved to the reader
          add(s, version);
        }
      }
      for (Schema s : current.values()) {
        add(s, String.valueOf(versions.getOrDefault(s.getName(), 0) + 1));
      }
    }

    private void add(Schema s, String version) {
      long fp = SchemaNormalization.parsingFingerprint64(s);
      writers.put(fp, s);
      lines.add(s.getName() + "\t" + version + "\t" + String.format("%016x", fp));
    }

    /** The writer's record name, from the single-object header (fingerprint little-endian). */
    String nameOf(byte[] message) {
      if (message.length < 10 || message[0] != (byte) 0xC3 || message[1] != 0x01) {
        throw new IllegalArgumentException("not a single-object message");
      }
      long fp = 0;
      for (int i = 9; i >= 2; i--) {
        fp = (fp << 8) | (message[i] & 0xFF);
      }
      Schema s = writers.get(fp);
      if (s == null) {
        throw new IllegalArgumentException(String.format("unknown fingerprint %016x", fp));
      }
      return s.getName();
    }

    byte[] encode(String name, String json) throws IOException {
      Schema s = current.get(name);
      GenericRecord record =
          new GenericDatumReader<GenericRecord>(s).read(null, DecoderFactory.get().jsonDecoder(s, json));
      return encoders.get(name).encode(record).array();
    }

    GenericRecord decode(String name, byte[] message) throws IOException {
      return decoders.get(name).decode(message);
    }

    String json(GenericRecord record) throws IOException {
      Schema s = record.getSchema();
      ByteArrayOutputStream out = new ByteArrayOutputStream();
      JsonEncoder enc = EncoderFactory.get().jsonEncoder(s, out);
      new GenericDatumWriter<GenericRecord>(s).write(record, enc);
      enc.flush();
      return out.toString(StandardCharsets.UTF_8).replace("\n", "");
    }
  }

  public static void main(String[] args) throws Exception {
    PrintStream out = new PrintStream(System.out, false, StandardCharsets.UTF_8);
    BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
    HexFormat hex = HexFormat.of();
    switch (args[0]) {
      case "fingerprint" -> new Contracts(new File(args[1])).lines.forEach(out::println);
      case "encode" -> {
        Contracts c = new Contracts(new File(args[1]));
        for (String line; (line = in.readLine()) != null; ) {
          String[] p = line.split("\t", 2);
          out.println(hex.formatHex(c.encode(p[0], p[1])));
        }
      }
      case "decode" -> {
        Contracts c = new Contracts(new File(args[1]));
        for (String line; (line = in.readLine()) != null; ) {
          byte[] message = hex.parseHex(line.strip());
          String name = c.nameOf(message);
          GenericRecord record = c.decode(name, message);
          byte[] again = c.encoders.get(name).encode(record).array();
          out.println(name + "\t" + c.json(record) + "\t" + hex.formatHex(again));
        }
      }
      case "produce" -> {
        Contracts c = new Contracts(new File(args[3]));
        produce(args[1], args[2], in, out, 3, p -> c.encode(p[1], p[2]));
      }
      case "produce-raw" -> produce(args[1], args[2], in, out, 2, p -> hex.parseHex(p[1]));
      case "consume" ->
          consume(args[1], args[2], new Contracts(new File(args[3])), Integer.parseInt(args[4]),
              Long.parseLong(args[5]), out);
      default -> throw new IllegalArgumentException("unknown command " + args[0]);
    }
    out.flush();
  }

  interface Value {
    byte[] of(String[] fields) throws IOException;
  }

  /** One record per stdin line: its fields split by tabs, the first the key. */
  static void produce(String bootstrap, String topic, BufferedReader in, PrintStream out,
      int fields, Value value) throws Exception {
    Properties props = new Properties();
    props.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
    props.put(ProducerConfig.ACKS_CONFIG, "all");
    props.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, "true");
    props.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
    props.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
    try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(props)) {
      List<java.util.concurrent.Future<RecordMetadata>> sent = new ArrayList<>();
      for (String line; (line = in.readLine()) != null; ) {
        String[] p = line.split("\t", fields);
        byte[] key = p[0].getBytes(StandardCharsets.UTF_8);
        sent.add(producer.send(new ProducerRecord<>(topic, key, value.of(p))));
      }
      producer.flush();
      for (var f : sent) {
        RecordMetadata m = f.get();
        out.println(m.partition() + "\t" + m.offset());
      }
    }
  }

  static void consume(String bootstrap, String topic, Contracts c, int count, long timeoutMs,
      PrintStream out) throws Exception {
    Properties props = new Properties();
    props.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
    props.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
    props.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
    props.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
    props.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
    try (KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(props)) {
      List<TopicPartition> parts = consumer.partitionsFor(topic, Duration.ofMillis(timeoutMs)).stream()
          .map(p -> new TopicPartition(p.topic(), p.partition()))
          .collect(Collectors.toList());
      consumer.assign(parts);
      consumer.seekToBeginning(parts);
      long deadline = System.currentTimeMillis() + timeoutMs;
      int seen = 0;
      while (seen < count && System.currentTimeMillis() < deadline) {
        for (ConsumerRecord<byte[], byte[]> r : consumer.poll(Duration.ofMillis(200))) {
          String name = c.nameOf(r.value());
          String key = r.key() == null ? "" : new String(r.key(), StandardCharsets.UTF_8);
          out.println(r.partition() + "\t" + r.offset() + "\t" + key + "\t" + name + "\t"
              + c.json(c.decode(name, r.value())));
          seen++;
        }
      }
      if (seen < count) {
        throw new IllegalStateException("read " + seen + " of " + count + " records from " + topic);
      }
    }
  }
}
