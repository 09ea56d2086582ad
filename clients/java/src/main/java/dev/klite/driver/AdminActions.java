package dev.klite.driver;

import static dev.klite.driver.Driver.assignmentJson;
import static dev.klite.driver.Driver.errorName;
import static dev.klite.driver.Driver.get;
import static dev.klite.driver.Driver.integer;
import static dev.klite.driver.Driver.strings;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AlterConfigOp;
import org.apache.kafka.clients.admin.Config;
import org.apache.kafka.clients.admin.ConfigEntry;
import org.apache.kafka.clients.admin.ConsumerGroupDescription;
import org.apache.kafka.clients.admin.DeleteConsumerGroupOffsetsResult;
import org.apache.kafka.clients.admin.DeleteConsumerGroupsResult;
import org.apache.kafka.clients.admin.DescribeClusterResult;
import org.apache.kafka.clients.admin.DescribeConsumerGroupsResult;
import org.apache.kafka.clients.admin.GroupListing;
import org.apache.kafka.clients.admin.LogDirDescription;
import org.apache.kafka.clients.admin.ReplicaInfo;
import org.apache.kafka.clients.admin.MemberDescription;
import org.apache.kafka.clients.admin.NewPartitions;
import org.apache.kafka.clients.admin.RecordsToDelete;
import org.apache.kafka.common.Node;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.config.ConfigResource;

/** The `admin` op's actions, in the result shapes of scenarios/README.md. */
final class AdminActions {
  private AdminActions() {}

  static void run(Admin admin, JsonNode c, ObjectNode res) throws Exception {
    String action = c.path("action").asText();
    switch (action) {
      case "list_groups" -> listGroups(admin, res);
      case "describe_groups" -> describeGroups(admin, strings(c.get("groups")), res);
      case "describe_consumer_groups" ->
          describeConsumerGroups(admin, strings(c.get("groups")), res);
      case "delete_groups" -> deleteGroups(admin, strings(c.get("groups")), res);
      case "offset_delete" -> offsetDelete(admin, c, res);
      case "delete_records" -> deleteRecords(admin, c, res);
      case "describe_log_dirs" -> describeLogDirs(admin, c, res);
      case "describe_configs" -> describeConfigs(admin, c, res);
      case "alter_configs" -> alterConfigs(admin, c, res);
      case "create_partitions" -> {
        String topic = c.path("topic").asText();
        get(
            admin
                .createPartitions(Map.of(topic, NewPartitions.increaseTo(integer(c, "count", 1))))
                .all());
      }
      case "describe_cluster" -> describeCluster(admin, res);
      default -> throw new Driver.Unsupported("unknown admin action " + action);
    }
  }

  private static void listGroups(Admin admin, ObjectNode res) throws Exception {
    List<GroupListing> gs = new ArrayList<>(get(admin.listGroups().all()));
    gs.sort(Comparator.comparing(GroupListing::groupId));
    ArrayNode out = res.putArray("groups");
    for (GroupListing g : gs) {
      ObjectNode o = out.addObject();
      o.put("group", g.groupId());
      o.put("protocol_type", g.protocol());
      o.put("state", g.groupState().map(Object::toString).orElse(null));
    }
  }

  /** Shape as in scenarios/README.md; groups sorted by name, members by instance/client id. */
  private static void describeGroups(Admin admin, List<String> groups, ObjectNode res) throws Exception {
    DescribeConsumerGroupsResult r = admin.describeConsumerGroups(groups);
    ArrayNode out = res.putArray("groups");
    for (String g : groups.stream().sorted().distinct().toList()) {
      ObjectNode o = out.addObject();
      o.put("group", g);
      try {
        ConsumerGroupDescription d = get(r.describedGroups().get(g));
        o.put("state", d.groupState() == null ? null : d.groupState().toString());
        // The Java admin reports no protocol type; a group without one is "simple".
        o.put("protocol_type", d.isSimpleConsumerGroup() ? "" : "consumer");
        o.put("protocol", d.partitionAssignor());
        List<MemberDescription> ms = new ArrayList<>(d.members());
        ms.sort(
            Comparator.comparing((MemberDescription m) -> m.groupInstanceId().orElse(""))
                .thenComparing(MemberDescription::clientId)
                .thenComparing(MemberDescription::consumerId));
        ArrayNode ma = o.putArray("members");
        for (MemberDescription m : ms) {
          ObjectNode mo = ma.addObject();
          mo.put("member_id", m.consumerId());
          mo.put("instance_id", m.groupInstanceId().orElse(null));
          mo.put("client_id", m.clientId());
          mo.set("assignment", assignmentJson(m.assignment().topicPartitions()));
        }
        o.putNull("error");
      } catch (Exception e) {
        o.put("error", errorName(e));
      }
    }
  }

  /** KIP-848 view (ConsumerGroupDescribe); members sorted by instance id, then member id. */
  private static void describeConsumerGroups(Admin admin, List<String> groups, ObjectNode res)
      throws Exception {
    DescribeConsumerGroupsResult r = admin.describeConsumerGroups(groups);
    ArrayNode out = res.putArray("groups");
    for (String g : groups.stream().sorted().distinct().toList()) {
      ObjectNode o = out.addObject();
      o.put("group", g);
      try {
        ConsumerGroupDescription d = get(r.describedGroups().get(g));
        o.put("state", d.groupState() == null ? null : d.groupState().toString());
        o.put("epoch", d.groupEpoch().orElse(-1));
        o.put("assignment_epoch", d.targetAssignmentEpoch().orElse(-1));
        o.put("assignor", d.partitionAssignor());
        List<MemberDescription> ms = new ArrayList<>(d.members());
        ms.sort(
            Comparator.comparing((MemberDescription m) -> m.groupInstanceId().orElse(""))
                .thenComparing(MemberDescription::consumerId));
        ArrayNode ma = o.putArray("members");
        for (MemberDescription m : ms) {
          ObjectNode mo = ma.addObject();
          mo.put("member_id", m.consumerId());
          mo.put("instance_id", m.groupInstanceId().orElse(null));
          mo.put("member_epoch", m.memberEpoch().orElse(-1));
          mo.set("assignment", assignmentJson(m.assignment().topicPartitions()));
        }
        o.putNull("error");
      } catch (Exception e) {
        o.put("error", errorName(e));
      }
    }
  }

  private static void deleteGroups(Admin admin, List<String> groups, ObjectNode res) throws Exception {
    DeleteConsumerGroupsResult r = admin.deleteConsumerGroups(groups);
    ArrayNode out = res.putArray("groups");
    for (String g : groups.stream().sorted().distinct().toList()) {
      ObjectNode o = out.addObject();
      o.put("group", g);
      try {
        get(r.deletedGroups().get(g));
        o.putNull("error");
      } catch (Exception e) {
        o.put("error", errorName(e));
      }
    }
  }

  private static void offsetDelete(Admin admin, JsonNode c, ObjectNode res) throws Exception {
    String g = c.path("group").asText();
    String topic = c.path("topic").asText();
    Set<TopicPartition> tps = new HashSet<>();
    c.path("partitions").forEach(x -> tps.add(new TopicPartition(topic, x.asInt())));
    DeleteConsumerGroupOffsetsResult r = admin.deleteConsumerGroupOffsets(g, tps);
    ArrayNode out = res.putArray("partitions");
    List<TopicPartition> sorted = new ArrayList<>(tps);
    sorted.sort(Comparator.comparingInt(TopicPartition::partition));
    for (TopicPartition tp : sorted) {
      ObjectNode o = out.addObject();
      o.put("partition", tp.partition());
      try {
        get(r.partitionResult(tp));
        o.putNull("error");
      } catch (Exception e) {
        o.put("error", errorName(e));
      }
    }
  }

  private static void deleteRecords(Admin admin, JsonNode c, ObjectNode res) throws Exception {
    TopicPartition tp = new TopicPartition(c.path("topic").asText(), integer(c, "partition", 0));
    long off = c.path("offset").asLong();
    res.put(
        "low_watermark",
        get(admin
                .deleteRecords(Map.of(tp, RecordsToDelete.beforeOffset(off)))
                .lowWatermarks()
                .get(tp))
            .lowWatermark());
  }

  /** The partition's size summed over every broker's log directories (one broker here). */
  private static void describeLogDirs(Admin admin, JsonNode c, ObjectNode res) throws Exception {
    TopicPartition tp = new TopicPartition(c.path("topic").asText(), integer(c, "partition", 0));
    List<Integer> brokers = new ArrayList<>();
    for (Node n : get(admin.describeCluster().nodes())) {
      brokers.add(n.id());
    }
    Map<Integer, Map<String, LogDirDescription>> all =
        get(admin.describeLogDirs(brokers).allDescriptions());
    long size = 0;
    boolean found = false;
    for (Map<String, LogDirDescription> dirs : all.values()) {
      for (LogDirDescription d : dirs.values()) {
        if (d.error() != null) {
          throw d.error();
        }
        ReplicaInfo ri = d.replicaInfos().get(tp);
        if (ri != null) {
          size += ri.size();
          found = true;
        }
      }
    }
    if (!found) {
      throw new Driver.Fail("CLIENT_ERROR", "no log directory holds " + tp);
    }
    res.put("size", size);
  }

  private static void describeConfigs(Admin admin, JsonNode c, ObjectNode res) throws Exception {
    ConfigResource cr = new ConfigResource(ConfigResource.Type.TOPIC, c.path("topic").asText());
    Config cfg = get(admin.describeConfigs(List.of(cr)).values().get(cr));
    List<String> names = strings(c.get("names"));
    List<ConfigEntry> es = new ArrayList<>(cfg.entries());
    es.sort(Comparator.comparing(ConfigEntry::name));
    ArrayNode out = res.putArray("configs");
    for (ConfigEntry e : es) {
      if (!names.isEmpty() && !names.contains(e.name())) {
        continue;
      }
      ObjectNode o = out.addObject();
      o.put("name", e.name());
      o.put("value", e.value());
      o.put("source", sourceName(e.source()));
    }
  }

  /** The protocol's name of a config source (the Java enum differs for two of them). */
  private static String sourceName(ConfigEntry.ConfigSource s) {
    return switch (s) {
      case DYNAMIC_CLIENT_METRICS_CONFIG -> "CLIENT_METRICS_CONFIG";
      case DYNAMIC_GROUP_CONFIG -> "GROUP_CONFIG";
      default -> s.name();
    };
  }

  private static void alterConfigs(Admin admin, JsonNode c, ObjectNode res) throws Exception {
    ConfigResource cr = new ConfigResource(ConfigResource.Type.TOPIC, c.path("topic").asText());
    List<AlterConfigOp> ops = new ArrayList<>();
    c.path("configs")
        .fields()
        .forEachRemaining(
            e ->
                ops.add(
                    e.getValue().isNull()
                        ? new AlterConfigOp(
                            new ConfigEntry(e.getKey(), null), AlterConfigOp.OpType.DELETE)
                        : new AlterConfigOp(
                            new ConfigEntry(e.getKey(), e.getValue().asText()),
                            AlterConfigOp.OpType.SET)));
    get(admin.incrementalAlterConfigs(Map.of(cr, ops)).all());
  }

  private static void describeCluster(Admin admin, ObjectNode res) throws Exception {
    DescribeClusterResult r = admin.describeCluster();
    res.put("cluster_id", get(r.clusterId()));
    Node ctl = get(r.controller());
    res.put("controller", ctl == null ? -1 : ctl.id());
    res.put("brokers", get(r.nodes()).size());
  }
}
