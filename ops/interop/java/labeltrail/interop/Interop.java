package labeltrail.interop;

import java.io.BufferedReader;
import java.io.ByteArrayOutputStream;
import java.io.File;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.TreeMap;
import java.util.stream.Collectors;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.apache.avro.Schema;
import org.apache.avro.SchemaNormalization;
import org.apache.avro.generic.GenericData;
import org.apache.avro.generic.GenericDatumReader;
import org.apache.avro.generic.GenericDatumWriter;
import org.apache.avro.generic.GenericRecord;
import org.apache.avro.io.BinaryEncoder;
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
 * encode-registry REGISTRY SCHEMA_DIR
 *                                    "topic\tName\tjson" in, Confluent-framed bytes (hex) out
 * decode-registry REGISTRY SCHEMA_DIR
 *                                    hex in, "Name\tjson" out
 * </pre>
 *
 * <p>The registry commands speak the Confluent wire format by hand, as any client of a
 * Confluent-compatible registry may: register the schema under its subject
 * ({@code <topic>-<full record name>}, TopicRecordNameStrategy) to get its id, write
 * {@code 00}, the id (4 bytes, big-endian) and the Avro body; read by fetching the writer
 * schema by id and resolving it to the reader's schema.
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
      case "encode-registry" -> {
        Registry r = new Registry(args[1], new Contracts(new File(args[2])));
        for (String line; (line = in.readLine()) != null; ) {
          String[] p = line.split("\t", 3);
          out.println(hex.formatHex(r.encode(p[0], p[1], p[2])));
        }
      }
      case "decode-registry" -> {
        Registry r = new Registry(args[1], new Contracts(new File(args[2])));
        for (String line; (line = in.readLine()) != null; ) {
          GenericRecord record = r.decode(hex.parseHex(line.strip()));
          out.println(record.getSchema().getName() + "\t" + r.contracts.json(record));
        }
      }
      default -> throw new IllegalArgumentException("unknown command " + args[0]);
    }
    out.flush();
  }

  /** A client of a Confluent-compatible schema registry's REST API. */
  static final class Registry {
    final String url;
    final Contracts contracts;
    final HttpClient http = HttpClient.newHttpClient();
    final ObjectMapper json = new ObjectMapper();
    final Map<String, Integer> ids = new TreeMap<>();
    final Map<Integer, Schema> schemas = new TreeMap<>();

    Registry(String url, Contracts contracts) {
      this.url = url.replaceAll("/+$", "");
      this.contracts = contracts;
    }

    JsonNode call(String method, String path, String body) throws IOException, InterruptedException {
      HttpRequest.Builder req = HttpRequest.newBuilder(URI.create(url + path))
          .header("Content-Type", "application/vnd.schemaregistry.v1+json");
      req = body == null ? req.GET() : req.method(method, HttpRequest.BodyPublishers.ofString(body));
      HttpResponse<String> res = http.send(req.build(), HttpResponse.BodyHandlers.ofString());
      if (res.statusCode() / 100 != 2) {
        throw new IOException(method + " " + path + ": " + res.statusCode() + " " + res.body());
      }
      return json.readTree(res.body());
    }

    byte[] encode(String topic, String name, String record) throws Exception {
      Schema s = contracts.current.get(name);
      String subject = topic + "-" + s.getFullName();
      Integer id = ids.get(subject);
      if (id == null) {
        String body = json.writeValueAsString(Map.of("schema", s.toString()));
        id = call("POST", "/subjects/" + subject + "/versions", body).get("id").asInt();
        ids.put(subject, id);
      }
      GenericRecord value = new GenericDatumReader<GenericRecord>(s)
          .read(null, DecoderFactory.get().jsonDecoder(s, record));
      ByteArrayOutputStream out = new ByteArrayOutputStream();
      out.write(0);
      out.write(ByteBuffer.allocate(4).putInt(id).array());
      BinaryEncoder enc = EncoderFactory.get().directBinaryEncoder(out, null);
      new GenericDatumWriter<GenericRecord>(s).write(value, enc);
      enc.flush();
      return out.toByteArray();
    }

    GenericRecord decode(byte[] message) throws Exception {
      if (message.length < 5 || message[0] != 0) {
        throw new IllegalArgumentException("not Confluent-framed");
      }
      int id = ByteBuffer.wrap(message, 1, 4).getInt();
      Schema writer = schemas.get(id);
      if (writer == null) {
        writer = new Schema.Parser().parse(call("GET", "/schemas/ids/" + id, null).get("schema").asText());
        schemas.put(id, writer);
      }
      Schema reader = contracts.current.get(writer.getName());
      return new GenericDatumReader<GenericRecord>(writer, reader).read(null,
          DecoderFactory.get().binaryDecoder(message, 5, message.length - 5, null));
    }
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
