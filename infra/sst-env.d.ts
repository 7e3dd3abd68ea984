/**
 * Ambient declarations of the SST v3 / Pulumi AWS surface that sst.config.ts uses, so `tsc`
 * type-checks it without the `sst` package (not installed here: it downloads its platform and
 * Pulumi providers). Only what the config uses is declared; argument types list the fields it
 * passes, so a misspelt field or a wrong value type still fails the check. With sst installed,
 * `sst` generates the real declarations in .sst/platform/config.d.ts.
 */

interface SstOutput<T> {
  apply<U>(fn: (value: T) => U | SstOutput<U> | Promise<U>): SstOutput<U>;
}
type SstInput<T> = T | SstOutput<T> | Promise<T>;
type SstInputs<T> = SstInput<Array<SstInput<T>>>;

interface SstResourceOptions {
  dependsOn?: SstInput<unknown>[];
}

declare function $config(input: {
  app(input?: { stage?: string }): {
    name: string;
    home: 'aws' | 'cloudflare' | 'local';
    removal?: 'remove' | 'retain' | 'retain-all';
    providers?: { aws?: { region?: string } };
  };
  run(): Promise<Record<string, unknown> | void>;
}): unknown;

declare const $app: { readonly name: string; readonly stage: string };
declare function $interpolate(literals: TemplateStringsArray, ...placeholders: unknown[]): SstOutput<string>;
declare function $jsonStringify(value: unknown): SstOutput<string>;

declare namespace sst {
  class Secret {
    constructor(name: string, placeholder?: string);
    readonly value: SstOutput<string>;
  }
  namespace aws {
    class Bucket {
      constructor(name: string, args?: { versioning?: boolean; public?: boolean });
      readonly name: SstOutput<string>;
      readonly arn: SstOutput<string>;
    }
    class Vpc {
      constructor(name: string, args?: { az?: number; nat?: 'ec2' | 'managed' });
      readonly id: SstOutput<string>;
      readonly publicSubnets: SstOutput<string[]>;
      readonly privateSubnets: SstOutput<string[]>;
    }
  }
}

declare namespace aws {
  namespace ecr {
    class Repository {
      constructor(name: string, args?: { forceDelete?: boolean; imageTagMutability?: 'MUTABLE' | 'IMMUTABLE' });
      readonly repositoryUrl: SstOutput<string>;
    }
  }
  namespace iam {
    class Role {
      constructor(name: string, args: { assumeRolePolicy: SstInput<string> });
      readonly name: SstOutput<string>;
      readonly id: SstOutput<string>;
      readonly arn: SstOutput<string>;
    }
    class RolePolicyAttachment {
      constructor(name: string, args: { role: SstInput<string>; policyArn: SstInput<string> });
    }
    class RolePolicy {
      constructor(name: string, args: { role: SstInput<string>; policy: SstInput<string> });
    }
    class InstanceProfile {
      constructor(name: string, args: { role: SstInput<string> });
      readonly arn: SstOutput<string>;
    }
  }
  namespace ssm {
    function getParameterOutput(args: { name: SstInput<string> }): SstOutput<{ value: string }> & { readonly value: SstOutput<string> };
  }
  namespace ec2 {
    interface SecurityGroupRule {
      protocol: string;
      fromPort: number;
      toPort: number;
      cidrBlocks?: SstInputs<string>;
      securityGroups?: SstInputs<string>;
    }
    class SecurityGroup {
      constructor(name: string, args: { vpcId: SstInput<string>; ingress?: SecurityGroupRule[]; egress?: SecurityGroupRule[] });
      readonly id: SstOutput<string>;
    }
    class LaunchTemplate {
      constructor(
        name: string,
        args: {
          imageId: SstInput<string>;
          instanceType: SstInput<string>;
          iamInstanceProfile?: { arn?: SstInput<string>; name?: SstInput<string> };
          vpcSecurityGroupIds?: SstInputs<string>;
          blockDeviceMappings?: Array<{ deviceName: string; ebs: { volumeSize: number; volumeType: 'gp2' | 'gp3' | 'io1' | 'io2' } }>;
          userData?: SstInput<string>;
        },
      );
      readonly id: SstOutput<string>;
    }
  }
  namespace autoscaling {
    class Group {
      constructor(
        name: string,
        args: {
          vpcZoneIdentifiers: SstInputs<string>;
          minSize: number;
          maxSize: number;
          launchTemplate: { id: SstInput<string>; version: string };
          tags?: Array<{ key: string; value: string; propagateAtLaunch: boolean }>;
        },
      );
      readonly arn: SstOutput<string>;
    }
  }
  namespace cloudwatch {
    class LogGroup {
      constructor(name: string, args?: { retentionInDays?: number });
      readonly name: SstOutput<string>;
    }
  }
  namespace ecs {
    class Cluster {
      constructor(name: string, args?: { settings?: Array<{ name: 'containerInsights'; value: 'enabled' | 'disabled' | 'enhanced' }> });
      readonly name: SstOutput<string>;
      readonly arn: SstOutput<string>;
    }
    class CapacityProvider {
      constructor(
        name: string,
        args: {
          autoScalingGroupProvider: {
            autoScalingGroupArn: SstInput<string>;
            managedScaling?: {
              status: 'ENABLED' | 'DISABLED';
              targetCapacity?: number;
              minimumScalingStepSize?: number;
              maximumScalingStepSize?: number;
            };
            managedTerminationProtection?: 'ENABLED' | 'DISABLED';
          };
        },
      );
      readonly name: SstOutput<string>;
    }
    interface CapacityProviderStrategy {
      capacityProvider: SstInput<string>;
      weight?: number;
      base?: number;
    }
    class ClusterCapacityProviders {
      constructor(
        name: string,
        args: { clusterName: SstInput<string>; capacityProviders: SstInputs<string>; defaultCapacityProviderStrategies?: CapacityProviderStrategy[] },
      );
    }
    class TaskDefinition {
      constructor(
        name: string,
        args: {
          family: SstInput<string>;
          requiresCompatibilities: Array<'EC2' | 'FARGATE' | 'EXTERNAL'>;
          networkMode: 'awsvpc' | 'bridge' | 'host' | 'none';
          executionRoleArn: SstInput<string>;
          taskRoleArn: SstInput<string>;
          containerDefinitions: SstInput<string>;
        },
      );
      readonly arn: SstOutput<string>;
    }
    class Service {
      constructor(
        name: string,
        args: {
          cluster: SstInput<string>;
          taskDefinition: SstInput<string>;
          desiredCount: number;
          capacityProviderStrategies?: CapacityProviderStrategy[];
          networkConfiguration?: { subnets: SstInputs<string>; securityGroups?: SstInputs<string>; assignPublicIp?: boolean };
          loadBalancers?: Array<{ targetGroupArn: SstInput<string>; containerName: string; containerPort: number }>;
          healthCheckGracePeriodSeconds?: number;
        },
        opts?: SstResourceOptions,
      );
    }
  }
  namespace lb {
    class LoadBalancer {
      constructor(
        name: string,
        args: { loadBalancerType: 'application' | 'network'; subnets: SstInputs<string>; securityGroups?: SstInputs<string>; idleTimeout?: number },
      );
      readonly arn: SstOutput<string>;
      readonly dnsName: SstOutput<string>;
    }
    class TargetGroup {
      constructor(
        name: string,
        args: {
          port: number;
          protocol: 'HTTP' | 'HTTPS' | 'TCP';
          targetType: 'instance' | 'ip' | 'lambda' | 'alb';
          vpcId: SstInput<string>;
          deregistrationDelay?: number;
          healthCheck?: { path: string; matcher?: string; interval?: number; healthyThreshold?: number; unhealthyThreshold?: number };
        },
      );
      readonly arn: SstOutput<string>;
    }
    class Listener {
      constructor(
        name: string,
        args: {
          loadBalancerArn: SstInput<string>;
          port: number;
          protocol: 'HTTP' | 'HTTPS';
          defaultActions: Array<{ type: 'forward'; targetGroupArn: SstInput<string> }>;
        },
      );
    }
  }
}
