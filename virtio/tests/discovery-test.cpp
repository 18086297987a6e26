#include <doctest/doctest.h>

#include "tests/support/temp-dir.h"
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <string>

#include "virtio/vfio.h"

using namespace capnet::virtio;

namespace {

struct FakeSysfs {
  capnet::testing::TempDir tmp{"virtio-sysfs"};
  std::string root = tmp.path;
  FakeSysfs() {
    for (const char* d : {"bus/pci/devices", "bus/pci/drivers/vfio-pci", "bus/pci/drivers/virtio-pci",
                          "kernel/iommu_groups/2", "kernel/iommu_groups/3"}) {
      tmp.dir(d);
    }
  }
  void device(const std::string& addr, const std::string& vendor, const std::string& dev, const std::string& driver, int group) {
    std::string d = root + "/bus/pci/devices/" + addr;
    ::mkdir(d.c_str(), 0755);
    std::ofstream(d + "/vendor") << vendor << "\n";
    std::ofstream(d + "/device") << dev << "\n";
    if (!driver.empty()) (void)::symlink(("../../drivers/" + driver).c_str(), (d + "/driver").c_str());
    if (group >= 0) (void)::symlink(("../../../kernel/iommu_groups/" + std::to_string(group)).c_str(), (d + "/iommu_group").c_str());
  }
};

}  // namespace

TEST_CASE("discovery finds the virtio-net device bound to vfio-pci and its IOMMU group") {
  FakeSysfs fs;
  fs.device("0000:00:01.0", "0x8086", "0x29c0", "", -1);
  fs.device("0000:00:02.0", "0x1af4", "0x1041", "virtio-pci", 2);   // still the kernel's
  fs.device("0000:00:03.0", "0x1af4", "0x1041", "vfio-pci", 3);
  auto r = discoverNic(fs.root);
  REQUIRE(r.ok());
  CHECK(r->address == "0000:00:03.0");
  CHECK(r->group == 3);
}

TEST_CASE("discovery says why when no NIC is bound to vfio-pci") {
  FakeSysfs fs;
  fs.device("0000:00:02.0", "0x1af4", "0x1041", "virtio-pci", 2);
  auto r = discoverNic(fs.root);
  REQUIRE_FALSE(r.ok());
  CHECK(r.code() == VfioError::kNotFound);
  CHECK(r.message() == "no virtio-net device (1af4:1041) bound to vfio-pci");
  CHECK_FALSE(discoverNic(fs.root + "/nonexistent").ok());
}
